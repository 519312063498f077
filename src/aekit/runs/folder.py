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
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aekit.atomic import taken
from aekit.config import RunConfig, load_config
from aekit.errors import AekitError

if TYPE_CHECKING:
    from aekit.data.store import Store


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
        from aekit.training.checkpoint import latest_checkpoint  # torch: only when needed

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

    def open_training_store(self) -> Store | None:
        """The store this run trained on, opened; None when the config names none or it is
        gone (for what the run can do without it: names, a remembered label column)."""
        from aekit.data.store import exists, open_store

        store = self.training_store()
        return open_store(store) if store is not None and exists(store) else None

    def training_label_column(self) -> str | None:
        """The label column of the table the training store was ingested from (None when the
        store named none, is gone, or is unknown)."""
        store = self.open_training_store()
        return None if store is None else store.meta.get("source", {}).get("label_column")

    def history(self) -> list[dict[str, float]]:
        """The per-epoch rows of ``metrics.csv`` (empty when there is none)."""
        if not self.metrics.is_file():
            return []
        with open(self.metrics, newline="") as f:
            return [
                {k: float(v) for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(f)
            ]


def resolve(
    store: str | None,
    out: Path,
    config_file: str | None,
    overrides: dict[str, Any],
    sets: list[str],
    resume: bool,
    flags: dict[str, str] | None = None,
) -> RunConfig:
    """The configuration of a new run in ``out``, or the saved one of a run to resume.

    With ``resume``, options given again must match the saved ones (the command that crashed,
    repeated with ``--resume``). A folder whose run stopped before its first checkpoint holds
    nothing to continue: it is started again; so is a folder not made yet, or empty, when the
    store is given. Without a checkpoint to look for, this imports no
    torch: a mistake in the config or the flags answers at once.
    """
    folder = RunFolder(out)
    if taken(out) and not out.is_dir():  # a file, or a link that loops or leads nowhere
        raise AekitError(f"--out {out} is a file, not a run folder; choose a folder for the run.")
    if restarted() and folder.config.is_file():  # torchrun restarted this worker: continue
        return folder.read_config()
    if store:
        overrides = {"data.store": store, **overrides}
    if not folder.config.is_file():
        _require_fresh(folder, resume and not (store or config_file))
    if resume and folder.config.is_file():
        saved = folder.read_config()
        if config_file or overrides or sets:
            _require_same(saved, load_config(config_file, overrides, sets, flags), folder)
        return saved
    config = load_config(config_file, overrides, sets, flags)
    # Rank 0 creates the run folder; the other ranks may find it already made
    if is_first_rank() and folder.holds_run():
        if folder.latest_checkpoint() is not None:
            raise AekitError(
                f"{out} already holds a run; pass --resume to continue it, or choose another --out."
            )
        print(f"{out} holds a run that stopped before its first checkpoint: starting it again.")
    return config


def _require_fresh(folder: RunFolder, nothing_to_start: bool) -> None:
    """Refuse a folder that holds no run (no ``config.toml``) but other things, before anything
    is written there; and ``--resume`` with no run to continue and no store to start one.

    A folder that does not exist, or holds only aekit's hidden partials (what a command killed
    before its first file leaves), is a run to start: the same command plus ``--resume``
    then works whenever the first attempt died.
    """
    path = folder.path
    if path.is_dir():
        others = sorted(p.name for p in path.iterdir() if not _ours(p.name))
        if others and not folder.holds_run():
            raise AekitError(
                f"--out {path} holds no run (no config.toml) but other files ({others[0]}, ...); "
                "a run needs a folder of its own: choose a new or empty --out."
            )
    if nothing_to_start:
        raise AekitError(
            f"{path} holds no run to resume (no config.toml); give the store and the run's "
            "options with --resume to start it, or check --out."
        )


def _ours(name: str) -> bool:
    """Whether a name in a run folder is aekit's own without being a run: a hidden partial,
    or the plot of a learning-rate range test (``--find-lr``)."""
    return (name.startswith(".") and ".partial-" in name) or name == "lr_find.png"


def _require_same(saved: RunConfig, given: RunConfig, folder: RunFolder) -> None:
    """Raise, listing each key that differs, unless ``given`` describes the saved run (how much
    it prints aside, which is not part of a run)."""
    a, b = _flat(saved.model_dump()), _flat(given.model_dump())
    differ = [k for k in a if not k.startswith("log.") and a[k] != b[k]]
    if "data.store" in differ and _same_path(a["data.store"], b["data.store"]):
        differ.remove("data.store")
    if differ:
        listed = "; ".join(f"{k} saved {a[k]!r}, given {b[k]!r}" for k in differ)
        raise AekitError(
            f"--resume: the options differ from {folder.config} ({listed}); give the run's own "
            "options, or none, to continue it, or choose another --out for a new run."
        )


def _flat(sections: dict[str, Any]) -> dict[str, Any]:
    return {f"{s}.{k}": v for s, values in sections.items() for k, v in values.items()}


def _same_path(a: str, b: str) -> bool:
    return "://" not in a + b and os.path.abspath(a) == os.path.abspath(b)


def is_first_rank() -> bool:
    """True in rank 0 of a ``torchrun`` job, or in a process on its own: the one that writes the
    run folder and prints."""
    return int(os.environ.get("RANK", "0")) == 0


def restarted() -> bool:
    """True in a worker that torchrun's elastic agent restarted after a failure."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0
