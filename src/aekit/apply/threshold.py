"""Recalibrating a run's anomaly threshold on held-out normal data, and recording it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aekit.errors import AekitError


def calibrate_on_store(
    ae: Any, store: Any, *, fpr: float | None = None, contamination: float | None = None
) -> None:
    """Calibrate ``ae``'s threshold on the held-out split of ``store`` (its validation split,
    or its training split when it has none), whole, and record which data it used."""
    from aekit.data.stream import StoreBatches

    has_val = len(store.val_index) > 0
    held_out = store.val_index if has_val else store.train_index
    ae.calibrate_threshold(
        StoreBatches(store, held_out, 4096, 0, shuffle=False), fpr=fpr, contamination=contamination
    )
    ae.threshold_info_["data"] = (
        f"the {'validation' if has_val else 'training'} split of {store.path}"
    )


def recalibrate(
    ae: Any,
    run: str | Path,
    *,
    fpr: float | None = None,
    contamination: float | None = None,
    normal: str | Path | None = None,
) -> dict[str, Any]:
    """Set the threshold of the run's model and write it to ``RUN/model.json``.

    The calibration data are ``normal`` (a store or ingestible source, every sample) when
    given, else the validation split of the store the run was trained on.
    """
    from aekit.apply.inputs import source_store
    from aekit.data.store import open_store
    from aekit.runs import save_description

    run = Path(run)
    if not 0 < (fpr if fpr is not None else contamination or 0) <= 0.5:
        raise AekitError("--fpr and --contamination take a share in (0, 0.5], e.g. --fpr 0.01.")
    if normal is not None:
        with source_store(normal, ae) as store:
            ae.calibrate_threshold(store, fpr=fpr, contamination=contamination)
        ae.threshold_info_["data"] = f"all of {normal}"
    else:
        from aekit.config import load_config

        config_path = run / "config.toml"
        if not config_path.is_file():
            raise AekitError(
                f"{run} has no config.toml naming its training store; give the "
                "normal data with --normal SRC."
            )
        store_path = load_config(config_path).data.store
        if not store_path or not Path(store_path).exists():
            raise AekitError(
                f"the run's training store {store_path!r} is gone; give the "
                "normal data with --normal SRC."
            )
        calibrate_on_store(ae, open_store(store_path), fpr=fpr, contamination=contamination)
    save_description(ae, run)
    return {"threshold": ae.threshold_, **ae.threshold_info_}
