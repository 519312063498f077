"""A run folder's model files: safetensors weights and a JSON description. No pickle.

``RUN/model.safetensors`` holds every tensor of the model, the input scaling and the early copy
the anomaly score reads (``early.*``) included;
``RUN/model.json`` holds what is needed to rebuild it (kind, sample shape, estimator
parameters). :func:`load` rebuilds an :class:`~aekit.Autoencoder` from the two.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from aekit.atomic import published, write_text
from aekit.errors import AekitError
from aekit.estimator import Autoencoder
from aekit.models import auto_activation, auto_hidden, build_model
from aekit.models.base import AutoencoderModule
from aekit.runs.folder import RunFolder

FORMAT_VERSION = 1


def save_model(ae: Autoencoder, out: str | Path) -> None:
    """Write ``out/model.safetensors`` and ``out/model.json`` for a fitted estimator."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in ae.model_.state_dict().items()}
    with published(RunFolder(out).weights) as tmp:
        save_file(tensors, str(tmp))
    save_description(ae, out)


def save_description(ae: Autoencoder, out: str | Path) -> None:
    """Write ``out/model.json``: how to rebuild the model, and its calibrated threshold."""
    params = ae.get_params()
    description = {
        "format_version": FORMAT_VERSION,
        "kind": ae.kind,
        "output": ae.model_.output,
        "sample_shape": list(ae.model_.sample_shape),
        "n_features_in": int(ae.n_features_in_),
        "params": {
            **params,
            "hidden": params["hidden"] if params["hidden"] == "auto" else list(params["hidden"]),
            "conv_channels": list(params["conv_channels"]),
        },
        "stop_reason": getattr(ae, "stop_reason_", None),
        # The epoch of the early copy the anomaly score reads (0: none; see aekit.anomaly)
        "early_epoch": ae.model_.early_epoch,
    }
    if hasattr(ae, "feature_names_in_"):
        description["feature_names"] = [str(name) for name in ae.feature_names_in_]
    if hasattr(ae, "threshold_"):
        description["threshold"] = {"value": ae.threshold_, **ae.threshold_info_}
        description["latent_std"] = [float(v) for v in ae.latent_std_]
    write_text(RunFolder(out).description, json.dumps(description, indent=2) + "\n")


def load(run: str | Path, device: str | None = None) -> Autoencoder:
    """Load the autoencoder a run saved, ready for ``transform`` and friends.

    ``device`` ('cpu', 'cuda', 'auto') is where it computes. By default, the run's own device
    setting; a run trained on a GPU loads on the CPU where there is none (the weights are saved
    from the CPU, so they load anywhere).

    Examples
    --------
    >>> ae = aekit.load("runs/digits")  # doctest: +SKIP
    >>> Z = ae.transform(X)  # doctest: +SKIP
    """
    folder = RunFolder(run)
    description_path, weights_path = folder.description, folder.weights
    if not description_path.is_file() or not weights_path.is_file():
        raise AekitError(
            f"{run} holds no trained model (model.json and model.safetensors); train one with "
            "'aekit train' or pass the run folder it wrote."
        )
    try:
        description = json.loads(description_path.read_text())
        ae, model = _rebuild(description, description_path)
        model.load_state_dict(load_file(str(weights_path)))
        _restore_fitted(ae, model.eval(), description, description_path)
    except AekitError:
        raise
    except Exception as exc:  # edited, swapped or truncated files: say which, not a traceback
        raise AekitError(
            f"{run}: model.json and model.safetensors do not make a model aekit wrote "
            f"({type(exc).__name__}: {exc}); retrain, or restore the run's files."
        ) from exc
    if device is None:
        device = ae.device if ae.device == "auto" or torch.cuda.is_available() else "cpu"
    return ae.to(device)


def _restore_fitted(
    ae: Autoencoder, model: AutoencoderModule, description: dict, path: Path
) -> None:
    """Give ``ae`` the fitted attributes that ``model.json`` saved."""
    ae.model_ = model
    ae.sample_shape_ = tuple(description["sample_shape"])
    ae.loss_ = "bce" if description["output"] == "bernoulli" else "mse"
    ae.n_features_in_ = int(description["n_features_in"])
    ae.stop_reason_ = str(description.get("stop_reason") or "unknown")
    if description.get("feature_names"):
        ae.feature_names_in_ = np.asarray(description["feature_names"], dtype=object)
    if "threshold" in description:
        info = dict(description["threshold"])
        ae.threshold_ = float(info.pop("value"))
        ae.threshold_info_ = info
        ae.latent_std_ = np.asarray(description["latent_std"], dtype=np.float32)
        _check_calibration(ae, path)


def _check_calibration(ae: Autoencoder, path: Path) -> None:
    """Refuse calibrated fields that calibration never writes: a threshold that is not a finite
    number would flag nothing (NaN) or everything, a spread of 0 divides the codes by zero."""
    if not np.isfinite(ae.threshold_):
        raise AekitError(
            f"{path}: threshold.value is {ae.threshold_}, not a finite number; the file was "
            "edited: restore it, or retrain."
        )
    std = ae.latent_std_
    if std.shape != (ae.latent_dim,) or not (np.isfinite(std) & (std > 0)).all():
        raise AekitError(
            f"{path}: latent_std must hold {ae.latent_dim} finite numbers > 0 (calibration "
            f"writes at least 1e-8); it holds {std.tolist()}: restore it, or retrain."
        )


def _rebuild(description: dict, path: Path) -> tuple[Autoencoder, AutoencoderModule]:
    """The estimator and its untrained model as ``model.json`` describes them."""
    if description.get("format_version", 0) > FORMAT_VERSION:
        raise AekitError(f"{path} was written by a newer aekit; upgrade aekit.")
    params = dict(description["params"])
    if params["hidden"] != "auto":
        params["hidden"] = tuple(params["hidden"])
    params["conv_channels"] = tuple(params["conv_channels"])
    ae = Autoencoder(**params)
    shape = tuple(description["sample_shape"])
    zeros = np.zeros(shape[-1])  # placeholders: the saved buffers replace them
    model = build_model(
        ae.kind,
        shape,
        ae.latent_dim,
        hidden=auto_hidden(ae.kind, ae.hidden, shape),
        conv_channels=ae.conv_channels,
        activation=auto_activation(ae.activation, shape),
        mean=zeros,
        std=zeros + 1,
        output=description["output"],
    )
    if description.get("early_epoch"):  # placeholders again, replaced by the saved tensors
        model.keep_early(copy.deepcopy(model), description["early_epoch"], torch.ones(2))
    return ae, model
