"""Recalibrating a run's anomaly threshold on held-out normal data, and recording it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aekit.apply.inputs import source_store
from aekit.data.store import exists, open_store
from aekit.errors import AekitError
from aekit.estimator import Autoencoder
from aekit.runs.folder import RunFolder
from aekit.runs.model import save_description
from aekit.training.fitting import store_held_out


def recalibrate(
    ae: Autoencoder,
    run: str | Path,
    *,
    fpr: float | None = None,
    contamination: float | None = None,
    normal: str | Path | None = None,
    save: bool = False,
) -> dict[str, Any]:
    """Set the threshold of the run's model; with ``save``, also in ``RUN/model.json`` (later
    scores use it), else for ``ae`` only.

    The calibration data are ``normal`` (a store or ingestible source, every sample) when
    given, else the held-out split of the store the run was trained on (its validation split,
    or its training split when it has none), whole.
    """
    folder = RunFolder(run)
    if not 0 < (fpr if fpr is not None else contamination or 0) <= 0.5:
        raise AekitError("--fpr and --contamination take a share in (0, 0.5], e.g. --fpr 0.01.")
    if normal is not None:
        with source_store(normal, ae) as store:
            ae.calibrate_threshold(store, fpr=fpr, contamination=contamination)
        ae.threshold_info_["data"] = f"all of {normal}"
    else:
        if not folder.config.is_file():
            raise AekitError(
                f"{folder.path} has no config.toml naming its training store; give the "
                "normal data with --normal SRC."
            )
        store_path = folder.training_store()
        if not store_path or not exists(store_path):
            raise AekitError(
                f"the run's training store {store_path!r} is gone; give the "
                "normal data with --normal SRC."
            )
        held_out, name = store_held_out(open_store(store_path))
        ae.calibrate_threshold(held_out, fpr=fpr, contamination=contamination)
        ae.threshold_info_["data"] = name
    if save:
        save_description(ae, folder.path)
    return {"threshold": ae.threshold_, **ae.threshold_info_}
