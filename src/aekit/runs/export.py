"""Exporting a run's model for other runtimes, with the names its training data gave."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aekit.apply.export import export_onnx
from aekit.apply.maps import feature_names
from aekit.errors import AekitError
from aekit.runs.folder import RunFolder
from aekit.runs.model import load

FORMATS = ("onnx",)


def export_run(run: str | Path, out: str | Path, *, format: str = "onnx") -> dict[str, Any]:
    """Write the model of ``run`` to the folder ``out`` (see :mod:`aekit.apply.export`); the
    feature names are the run's training store's while it exists, else the model's own."""
    if format not in FORMATS:
        raise AekitError(f"--format {format}: aekit exports to {', '.join(FORMATS)}.")
    ae = load(run)
    names = feature_names(RunFolder(run).open_training_store(), ae)
    return export_onnx(ae, out, feature_names=names)
