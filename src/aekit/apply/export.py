"""A fitted model as ONNX files that run without aekit or PyTorch (onnxruntime, TensorRT, a
browser), and a description of what they take and give.

Three graphs, each taking raw inputs as the model does, so that nothing of aekit's has to be
rewritten next to them:

- ``encoder.onnx``: raw samples to codes (the mean code of a VAE), standardisation inside;
- ``scorer.onnx``: raw samples to the anomaly score (``Autoencoder.anomaly_score``: the final
  and the early model's errors, see :mod:`aekit.anomaly`) and its flag against the calibrated
  threshold;
- ``decoder.onnx``: codes to samples in raw units (generation, decompression).

The batch dimension is dynamic. ``export.json`` gives each file's inputs and outputs (names,
shapes, dtypes), the feature names and the threshold with how it was chosen; ``README.txt`` says
the same in words. The folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aekit.anomaly import anomaly_score
from aekit.apply.fitted import FittedModel
from aekit.atomic import published
from aekit.errors import AekitError
from aekit.models import AutoencoderModule
from aekit.objectives import Objective

FORMAT_VERSION = 1
OPSET = 18


class _Method(nn.Module):
    """One method of the model (``encode``, ``decode``) as the module the exporter traces."""

    def __init__(self, model: AutoencoderModule, method: str) -> None:
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.model, self.method)(x)


class _Scorer(nn.Module):
    threshold: torch.Tensor

    def __init__(self, model: AutoencoderModule, beta: float, threshold: float) -> None:
        super().__init__()
        self.model = model
        self.objective = Objective(None, None, beta)
        # float32, as the scores: the comparison is the one predict() makes
        self.register_buffer("threshold", torch.tensor(threshold, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        score = anomaly_score(self.objective, self.model, x)
        return score, score > self.threshold


def _tensor(name: str, shape: list[Any], dtype: str) -> dict[str, Any]:
    return {"name": name, "shape": shape, "dtype": dtype}


def export_onnx(
    ae: FittedModel, out: str | Path, *, feature_names: list[str] | None = None
) -> dict[str, Any]:
    """Write ``out/`` with the model's ONNX files, ``export.json`` and ``README.txt``; return
    the description (``export.json``'s content).

    Raises :class:`AekitError` naming the part that cannot be exported, or the missing package;
    nothing is left at ``out`` then.
    """
    out = Path(out)
    if out.exists():
        raise AekitError(f"--out {out} already exists; remove it or choose another folder.")
    out.parent.mkdir(parents=True, exist_ok=True)
    model = ae.model_.eval()
    device = next(model.parameters()).device
    shape = list(ae.sample_shape_)
    samples = _tensor("x", ["batch", *shape], "float32")
    codes = _tensor("code", ["batch", ae.latent_dim], "float32")
    parts: dict[str, tuple[nn.Module, torch.Tensor, dict[str, Any]]] = {
        "encoder": (
            _Method(model, "encode"),
            torch.zeros(2, *shape, device=device),
            {"inputs": [samples], "outputs": [codes]},
        ),
        "decoder": (
            _Method(model, "decode"),
            torch.zeros(2, ae.latent_dim, device=device),
            {"inputs": [codes], "outputs": [_tensor("x_hat", ["batch", *shape], "float32")]},
        ),
    }
    threshold = getattr(ae, "threshold_", None)
    if threshold is not None:
        parts["scorer"] = (
            _Scorer(model, ae.beta, threshold),
            torch.zeros(2, *shape, device=device),
            {
                "inputs": [samples],
                "outputs": [
                    _tensor("score", ["batch"], "float32"),
                    _tensor("flag", ["batch"], "bool"),
                ],
            },
        )
    description = {
        "format_version": FORMAT_VERSION,
        "opset": OPSET,
        "model": model.architecture.describe(),
        "architecture": model.architecture.to_dict(),
        "variational": bool(model.variational),
        "sample_shape": shape,
        "latent_dim": ae.latent_dim,
        "input_units": "raw, as the training data (the graphs standardise)",
        "feature_names": feature_names,
        "files": {f"{name}.onnx": io for name, (_, _, io) in parts.items()},
        "threshold": None
        if threshold is None
        else {"value": float(threshold), **ae.threshold_info_, "flag": "score > value"},
    }
    with published(out) as tmp:
        tmp.mkdir(parents=True)
        for name, (module, example, io) in parts.items():
            _export_part(name, module, example, io, tmp / f"{name}.onnx")
        (tmp / "export.json").write_text(json.dumps(description, indent=2) + "\n")
        (tmp / "README.txt").write_text(_readme(description))
    return description


def _export_part(
    name: str, module: nn.Module, example: torch.Tensor, io: dict[str, Any], path: Path
) -> None:
    input_name = io["inputs"][0]["name"]
    # torch's exporter warns about its own internals (FutureWarning, DeprecationWarning) and
    # logs each torchvision operator it skips; none of it concerns the user's model
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (example,),
                str(path),
                input_names=[input_name],
                output_names=[t["name"] for t in io["outputs"]],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                opset_version=OPSET,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
        _check_dynamic_batch(name, path)
    except ImportError as exc:
        raise AekitError(
            f"exporting to ONNX needs the onnx and onnxscript packages ({exc}): "
            "pip install 'aekit[onnx]'."
        ) from exc
    except AekitError:
        raise
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AekitError(f"the {name} cannot be exported to ONNX: {message}") from exc
    finally:
        registry_log.setLevel(level)


def _check_dynamic_batch(name: str, path: Path) -> None:
    """torch's exporter falls back to fixed sizes when the model fixes the batch somewhere; a
    graph that takes only the example's batch size is refused, not shipped."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    for value in [*graph.input, *graph.output]:
        first = value.type.tensor_type.shape.dim[0]
        if first.dim_param != "batch":
            raise AekitError(
                f"the {name} cannot be exported to ONNX with a batch of any size: its "
                f"{value.name!r} has a fixed first dimension ({first.dim_value})."
            )


def _readme(description: dict[str, Any]) -> str:
    lines = [
        "ONNX files exported by aekit; export.json holds the same in machine-readable form.",
        "",
        f"Model: {description['model']}, samples of shape {description['sample_shape']}, codes of "
        f"{description['latent_dim']} dimensions. The first dimension of every input is the "
        "batch, of any size.",
        "Inputs are float32 in raw units, as the training data were (pixel values as stored "
        "for images): each graph standardises them itself.",
        "",
    ]
    for file, io in description["files"].items():
        ins = ", ".join(f"{t['name']} {t['dtype']} {t['shape']}" for t in io["inputs"])
        outs = ", ".join(f"{t['name']} {t['dtype']} {t['shape']}" for t in io["outputs"])
        lines.append(f"{file}: {ins} -> {outs}")
    threshold = description["threshold"]
    if threshold is not None:
        lines += [
            "",
            f"score is the {threshold['score']}; flag is score > {threshold['value']:.9g}, the "
            f"threshold set at the {threshold['method']} {threshold['share']:g} quantile of "
            f"{threshold.get('data', 'the held-out split')} ({threshold['samples']} samples). "
            "A score within float rounding of the threshold may flag differently across "
            "runtimes.",
        ]
    if description["feature_names"]:
        lines += ["", "Features, in input order: " + ", ".join(description["feature_names"])]
    python = (
        "import numpy as np, onnxruntime as ort\n"
        'encoder = ort.InferenceSession("encoder.onnx")\n'
        'codes = encoder.run(None, {"x": x.astype(np.float32)})[0]'
    )
    lines += ["", "In Python:", "", *("    " + line for line in python.splitlines()), ""]
    return "\n".join(lines)
