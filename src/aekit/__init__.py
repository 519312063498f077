"""aekit: train autoencoders on data larger than memory and put them to work.

The public names are imported on first use, so that ``import aekit`` (and the worker processes
that decode images) do not pay for torch and scikit-learn until they are needed.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from aekit.errors import AekitError, DataError

_LAZY = {
    "Autoencoder": "aekit.estimator",
    "ingest": "aekit.data.ingest",
    "open_store": "aekit.data.store",
    "Store": "aekit.data.store",
    "load": "aekit.runs",
}

if TYPE_CHECKING:
    __version__: str

    from aekit.data.ingest import ingest
    from aekit.data.store import Store, open_store
    from aekit.estimator import Autoencoder
    from aekit.runs import load


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return _version()
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aekit' has no attribute {name!r}")


def _version() -> str:
    # Read on first use: importlib.metadata takes half of the time ``aekit --help`` needs
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aekit")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"


__all__ = [
    "AekitError",
    "Autoencoder",
    "DataError",
    "Store",
    "__version__",
    "ingest",
    "load",
    "open_store",
]
