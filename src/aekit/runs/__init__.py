"""Run folders: their layout, the command-line training run, recalibration and the report.

This is the layer above the estimator: it turns a run folder into a fitted
:class:`~aekit.Autoencoder` and back.
"""

from __future__ import annotations

from aekit.runs.folder import RunFolder
from aekit.runs.model import load, save_description, save_model

__all__ = ["RunFolder", "load", "save_description", "save_model"]
