"""``python -m aekit`` runs the CLI (and lets ``torchrun -m aekit`` launch it)."""

import sys

from aekit.cli import main

sys.exit(main())
