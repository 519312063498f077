"""A run folder's model files: safetensors weights and a JSON description. No pickle.

``RUN/model.safetensors`` holds every tensor of the model, the input scaling and the early copy
the anomaly score reads (``early.*``) included;
``RUN/model.json`` holds what is needed to rebuild it: its architecture (the family by name or
import path, and its arguments), the estimator's parameters, the fit's history and the
calibrated threshold. :func:`load` rebuilds an :class:`~aekit.Autoencoder` from the two; a
family given by import path is imported (which runs that module, as any import does), and
nothing else from the run is executed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from aekit.atomic import published, write_text
from aekit.errors import AekitError
from aekit.estimator import Autoencoder
from aekit.families import name_of
from aekit.models import Architecture, AutoencoderModule, build_model
from aekit.runs.folder import RunFolder
from aekit.training.calibrate import Calibration
from aekit.training.fitting import Result

# 2: the architecture record and the fit's history; runs of format 1 still load
FORMAT_VERSION = 2


def save_model(ae: Autoencoder, out: str | Path) -> None:
    """Write ``out/model.safetensors`` and ``out/model.json`` for a fitted estimator (its
    network by name or import path, never pickled); :func:`load` reads them back.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit import Autoencoder
    >>> ae = Autoencoder(epochs=1).fit(np.random.default_rng(0).normal(size=(50, 3)))
    >>> save_model(ae, "saved-run")
    >>> sorted(p.name for p in Path("saved-run").iterdir())
    ['model.json', 'model.safetensors']
    """
    description = _description(ae)  # first: a network that cannot be saved writes nothing
    Path(out).mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in ae.model_.state_dict().items()}
    with published(RunFolder(out).weights) as tmp:
        save_file(tensors, str(tmp))
    write_text(RunFolder(out).description, description)


def save_description(ae: Autoencoder, out: str | Path) -> None:
    """Write ``out/model.json``: how to rebuild the model, and its calibrated threshold."""
    write_text(RunFolder(out).description, _description(ae))


def _description(ae: Autoencoder) -> str:
    params = ae.get_params()
    description = {
        "format_version": FORMAT_VERSION,
        "architecture": ae.model_.architecture.to_dict(),
        "n_features_in": int(ae.n_features_in_),
        "params": {
            **params,
            "hidden": params["hidden"] if params["hidden"] == "auto" else list(params["hidden"]),
            "conv_channels": list(params["conv_channels"]),
            "network": None if params["network"] is None else name_of(params["network"]),
        },
        "loss": ae.loss_,
        "stop_reason": getattr(ae, "stop_reason_", None),
        "history": getattr(ae, "history_", []),
        # The epoch of the early copy the anomaly score reads (0: none; see aekit.anomaly)
        "early_epoch": ae.model_.early_epoch,
        # The score weighs each feature's error and adds the code's distance (aekit.anomaly)
        "score_weighted": ae.model_.score_weighted,
    }
    if hasattr(ae, "feature_names_in_"):
        description["feature_names"] = [str(name) for name in ae.feature_names_in_]
    if hasattr(ae, "window_length_"):  # fitted on series: windows in, values per step out
        windows: dict[str, Any] = {"length": ae.window_length_, "stride": ae.window_stride_}
        if ae.channel_weights_ is not None:
            windows["channel_weights"] = [float(w) for w in ae.channel_weights_]
        description["windows"] = windows
    if hasattr(ae, "threshold_"):
        description["threshold"] = {"value": ae.threshold_, **ae.threshold_info_}
        description["latent_std"] = [float(v) for v in ae.latent_std_]
    try:
        return json.dumps(description, indent=2) + "\n"
    except TypeError as exc:  # network_kwargs holding an object JSON cannot write
        raise AekitError(
            f"the model cannot be saved: network_kwargs must hold numbers, strings, lists and "
            f"mappings only, which model.json can record ({exc})."
        ) from exc


def load(run: str | Path, device: str | None = None) -> Autoencoder:
    """Load the autoencoder a run saved, ready for ``transform`` and friends.

    ``device`` ('cpu', 'cuda', 'auto') is where it computes. By default, the run's own device
    setting; a run trained on a GPU loads on the CPU where there is none (the weights are saved
    from the CPU, so they load anywhere). A network given by import path is imported.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit import Autoencoder
    >>> X = np.random.default_rng(0).normal(size=(200, 5))
    >>> ae = Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
    >>> save_model(ae, "example-run")
    >>> again = load("example-run")
    >>> bool(np.allclose(again.transform(X), ae.transform(X))), again.n_iter_
    (True, 2)
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
        params = _params(description, description_path)
        model = _rebuild(description, params)
        _load_weights(model, weights_path)
        ae = Autoencoder.from_result(_result(model.eval(), description), params)
    except AekitError:
        raise
    except Exception as exc:  # edited, swapped or truncated files: say which, not a traceback
        raise AekitError(
            f"{run}: model.json and model.safetensors do not make a model aekit wrote "
            f"({type(exc).__name__}: {exc}); retrain, or restore the run's files."
        ) from exc
    if hasattr(ae, "threshold_"):
        _check_calibration(ae, description_path)
    if device is None:
        device = ae.device if ae.device == "auto" or torch.cuda.is_available() else "cpu"
    return ae.to(device)


def _params(description: dict, path: Path) -> dict[str, Any]:
    """The estimator's parameters as ``model.json`` records them."""
    if description.get("format_version", 0) > FORMAT_VERSION:
        raise AekitError(f"{path} was written by a newer aekit; upgrade aekit.")
    params = dict(description["params"])
    if params["hidden"] != "auto":
        params["hidden"] = tuple(params["hidden"])
    params["conv_channels"] = tuple(params["conv_channels"])
    if "windows" not in description:  # a run of rows; those saved before this kept 'auto'
        params["window_length"] = None
    return params


def _rebuild(description: dict, params: dict[str, Any]) -> AutoencoderModule:
    """The untrained model ``model.json`` describes (its weights are loaded next)."""
    if "architecture" in description:
        architecture = Architecture.from_dict(description["architecture"])
    else:  # format 1: the architecture follows from the parameters, as it did when fitted
        shape = description["sample_shape"]
        architecture = Architecture.from_settings(
            Autoencoder(**params), shape, description["output"]
        )
    zeros = np.zeros(architecture.sample_shape[-1])  # placeholders: the saved buffers replace them
    with torch.random.fork_rng(devices=[]):  # the caller's RNG is left as it was
        model = build_model(architecture, zeros, zeros + 1)
    if description.get("early_epoch"):  # placeholders again, replaced by the saved tensors
        model.keep_early(copy.deepcopy(model), description["early_epoch"], torch.ones(2))
    if description.get("score_weighted"):
        features, code = int(np.prod(architecture.sample_shape)), architecture.latent_dim
        for part in (model, model.early) if model.early is not None else (model,):
            part.keep_score_weights(torch.ones(features), torch.zeros(code), torch.eye(code))
    return model


def _load_weights(model: AutoencoderModule, path: Path) -> None:
    """The saved tensors into ``model``; one that is missing, extra or of another shape is
    named (the network's code changed since the run was saved, or the files were swapped)."""
    saved = load_file(str(path))
    own = model.state_dict()
    wrong = [
        f"{k}: missing" for k in own if k not in saved
    ] + [
        f"{k}: not in the network" for k in saved if k not in own
    ] + [
        f"{k}: {tuple(saved[k].shape)} saved, {tuple(own[k].shape)} built"
        for k in own if k in saved and saved[k].shape != own[k].shape
    ]  # fmt: skip
    if wrong:
        raise AekitError(
            f"{path}: the weights do not fit the network {model.architecture.label} rebuilt from "
            f"model.json ({len(wrong)} tensor(s); {wrong[0]}); restore the network's code as it "
            "was when the run was trained, or retrain."
        )
    model.load_state_dict(saved)


def _result(model: AutoencoderModule, description: dict) -> Result:
    """What the fit returned, as ``model.json`` recorded it."""
    calibration = None
    if "threshold" in description:
        info = dict(description["threshold"])
        calibration = Calibration(
            float(info.pop("value")), info, np.asarray(description["latent_std"], np.float32)
        )
    loss = description.get("loss") or ("bce" if model.output == "bernoulli" else "mse")
    return Result(
        model,
        loss,
        list(description.get("history") or []),
        str(description.get("stop_reason") or "unknown"),
        model.sample_shape,
        calibration,
        description.get("feature_names") or None,
        _windows(description, model.sample_shape),
        _channel_weights(description, model.sample_shape),
    )


def _channel_weights(description: dict, sample_shape: tuple[int, ...]) -> np.ndarray | None:
    """A series model's channel weights (None where the run has none: saved before them),
    refused unless they are one finite number > 0 per channel (an edited file)."""
    weights = (description.get("windows") or {}).get("channel_weights")
    if weights is None:
        return None
    ok = isinstance(weights, list) and all(
        isinstance(w, int | float) and not isinstance(w, bool) for w in weights
    )
    values = np.asarray(weights if ok else [], dtype=np.float32)
    if len(values) != sample_shape[-1] or not (np.isfinite(values) & (values > 0)).all():
        raise AekitError(
            f"model.json: windows.channel_weights must hold {sample_shape[-1]} finite numbers "
            f"> 0, one per channel; it holds {weights!r}: restore the file, or retrain."
        )
    return values


def _windows(description: dict, sample_shape: tuple[int, ...]) -> tuple[int, int] | None:
    """A series model's window length and stride, refused where they disagree with the
    samples the model takes (an edited file)."""
    windows = description.get("windows")
    if windows is None:
        return None
    length, stride = windows.get("length"), windows.get("stride")
    ok = all(isinstance(v, int) and v >= 1 for v in (length, stride))
    if not ok or len(sample_shape) != 2 or length != sample_shape[0]:
        raise AekitError(
            f"model.json: windows says length {length} and stride {stride}, but the model takes "
            f"samples of shape {tuple(sample_shape)}; the file was edited: restore it, or retrain."
        )
    return length, stride


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
