"""The run folder: its layout, and the questions every command asks of it.

``aekit train`` writes, and everything else reads, through :class:`RunFolder`::

    RUN/config.toml          the resolved run description (names the training store)
    RUN/model.safetensors    every tensor of the model, the input scaling included
    RUN/model.json           how to rebuild the model, and its calibrated threshold
    RUN/metrics.csv          one row per epoch
    RUN/checkpoints/         step-*.pt (the last few) and best.pt
    RUN/tensorboard/         event files, when asked for
    RUN/report.html          written by ``aekit report``
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from aekit.config import RunConfig, load_config
from aekit.errors import AekitError
from aekit.training.checkpoint import latest_checkpoint


@dataclass(frozen=True)
class RunFolder:
    path: Path

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path))

    @property
    def config(self) -> Path:
        return self.path / "config.toml"

    @property
    def weights(self) -> Path:
        return self.path / "model.safetensors"

    @property
    def description(self) -> Path:
        return self.path / "model.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    def holds_run(self) -> bool:
        """Whether a training run has started here (its config or metrics exist)."""
        return self.config.exists() or self.metrics.exists()

    def latest_checkpoint(self) -> Path | None:
        if not self.checkpoints.is_dir():
            return None
        return latest_checkpoint(self.checkpoints)

    def read_config(self) -> RunConfig:
        if not self.config.is_file():
            raise AekitError(f"{self.path} is not a run folder (no config.toml); check --out.")
        return load_config(self.config)

    def training_store(self) -> str | None:
        """The store this run trained on, as its config names it (None when it names none, or
        when the run was not written by ``aekit train``)."""
        if not self.config.is_file():
            return None
        return load_config(self.config).data.store or None

    def history(self) -> list[dict[str, float]]:
        """The per-epoch rows of ``metrics.csv`` (empty when there is none)."""
        if not self.metrics.is_file():
            return []
        with open(self.metrics, newline="") as f:
            return [
                {k: float(v) for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(f)
            ]
