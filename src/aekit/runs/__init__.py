"""Run folders: their layout, the command-line training run, recalibration and the report.

This is the layer above the estimator: it turns a run folder into a fitted
:class:`~aekit.Autoencoder` and back.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Imported on first use: 'aekit train' resolves its config from the run folder before it
# imports torch, so that a mistake in it answers at once
_LAZY = {
    "RunFolder": "aekit.runs.folder",
    "load": "aekit.runs.model",
    "save_description": "aekit.runs.model",
    "save_model": "aekit.runs.model",
}

if TYPE_CHECKING:
    from aekit.runs.folder import RunFolder
    from aekit.runs.model import load, save_description, save_model


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aekit.runs' has no attribute {name!r}")


__all__ = ["RunFolder", "load", "save_description", "save_model"]
