"""Sphinx configuration of aekit's documentation: MyST Markdown pages, numpydoc docstrings.

``make docs`` builds it with warnings as errors. The benchmarks page's tables are generated
here, before the build, from the committed result files in ``bench/results`` (see
``docs/results.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).parent))

from results import plot_odds, write_results_page  # noqa: E402

project = "aekit"
author = "the aekit developers"
copyright = "2026, the aekit developers"
extensions = ["myst_parser", "sphinx.ext.autodoc", "numpydoc"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_generated"]
myst_heading_anchors = 3
# numpydoc: no autosummary tables of members (the reference lists what it documents itself)
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()
autodoc_member_order = "bysource"
autodoc_typehints = "none"
html_theme = "alabaster"
html_theme_options = {
    "nosidebar": False,
    "font_family": "sans-serif",
    "head_font_family": "sans-serif",
}
html_static_path: list[str] = []
# Pages load nothing from the network (a test opens them with every request outside refused)
html_use_opensearch = ""

write_results_page(ROOT / "bench" / "results", Path(__file__).parent / "_generated" / "results.md")
plot_odds(ROOT / "bench" / "results", Path(__file__).parent / "_generated" / "odds.png")
