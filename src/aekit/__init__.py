"""aekit: train autoencoders on data larger than memory and put them to work."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from aekit.errors import AekitError, DataError
from aekit.estimator import Autoencoder

try:
    __version__ = version("aekit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["AekitError", "Autoencoder", "DataError", "__version__"]
