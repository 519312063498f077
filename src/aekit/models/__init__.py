"""Autoencoder families and the one function that builds a model from its architecture.

A family is a factory of two modules (see :mod:`aekit.families`); :func:`build_model`
calls it and wraps its modules in an :class:`AutoencoderModule`, which adds the scaling, the
code and the output.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aekit.errors import AekitError, SettingError
from aekit.memory import require_memory
from aekit.models.architecture import Architecture, auto_activation, auto_hidden
from aekit.models.base import ACTIVATIONS, AutoencoderModule, flat_width
from aekit.models.conv import ChannelsFirst, ChannelsLast
from aekit.models.scaling import Standardizer
from aekit.params import KINDS


def build_model(
    architecture: Architecture,
    mean: np.ndarray,
    std: np.ndarray,
    *,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
) -> AutoencoderModule:
    """The model ``architecture`` describes, its scaling from the statistics ``mean`` and
    ``std`` (and ``low``, ``high``) in raw units, its weights drawn from torch's global RNG.

    The weights are drawn in the order the data flow, features, code layer(s), decoder, however
    the factory made its modules (where each module with weights can draw them again), so that a
    seed gives the same model as when the built-in families were classes of their own.

    Examples
    --------
    >>> import numpy as np, torch
    >>> architecture = Architecture("dense", (20,), 4, hidden=(16,), activation="gelu")
    >>> model = build_model(architecture, np.zeros(20), np.ones(20))
    >>> model.encode(torch.zeros(3, 20)).shape
    torch.Size([3, 4])
    """
    _check_memory(architecture)
    state = torch.get_rng_state()
    features, decoder = _parts(architecture)
    model = AutoencoderModule(architecture, features, decoder, mean, std, low=low, high=high)
    heads = [model.to_code, *([model.to_logvar] if architecture.variational else [])]
    if all(_redrawable(m) for m in (features, decoder)):
        torch.set_rng_state(state)
        for module in (features, *heads, decoder):
            _redraw(module)
    return model


def _parts(architecture: Architecture) -> tuple[nn.Module, nn.Module]:
    """The family's ``(features, decoder)``, checked to be two modules."""
    factory = architecture.factory()
    kwargs = architecture.factory_kwargs()
    try:
        parts = factory(architecture.sample_shape, architecture.latent_dim, **kwargs)
    except AekitError:
        raise
    except TypeError as exc:  # most often arguments the factory does not take
        raise SettingError(
            f"network {architecture.label}: calling it with sample_shape "
            f"{architecture.sample_shape}, latent_dim {architecture.latent_dim} and "
            f"network_kwargs {kwargs} failed ({exc}); check network_kwargs against its "
            "signature."
        ) from exc
    if not (
        isinstance(parts, tuple)
        and len(parts) == 2
        and all(isinstance(p, nn.Module) for p in parts)
    ):
        raise SettingError(
            f"network {architecture.label} must return two modules, (features, decoder); it "
            f"returned {type(parts).__name__}."
        )
    return parts


def _check_memory(architecture: Architecture) -> None:
    """Refuse a model whose weights, gradients and AdamW's two moments (float32) cannot fit,
    before any of them is made: the family's parts are built on the meta device to count them."""
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            features, decoder = _parts(architecture)
            width = _code_input_width(architecture, features)
    except AekitError:
        raise
    except Exception:  # a network the meta device cannot build: counted when built for real
        return
    heads = 2 if architecture.variational else 1
    n = sum(p.numel() for part in (features, decoder) for p in part.parameters())
    n += heads * (width + 1) * architecture.latent_dim
    require_memory(
        16 * n,
        f"a {architecture.describe()} model of about {n:,} parameters",
        "lower --hidden, --latent-dim or --conv-channels"
        if architecture.built_in
        else "make the network smaller",
    )


def _code_input_width(architecture: Architecture, features: nn.Module) -> int:
    """F, the width the code layer takes. Known for the built-in bodies; found by a forward
    pass on the meta device otherwise (which costs the process about 65 MB of torch's meta
    kernels, so only a user's network pays it)."""
    if architecture.built_in and architecture.hidden:
        return architecture.hidden[-1]
    if architecture.family == "dense":
        return int(np.prod(architecture.sample_shape))
    return flat_width(features, architecture.sample_shape)


def _redrawable(module: nn.Module) -> bool:
    """Whether every module within ``module`` that holds weights can draw them again."""
    return all(
        hasattr(m, "reset_parameters")
        for m in module.modules()
        if next(m.parameters(recurse=False), None) is not None
    )


def _redraw(module: nn.Module) -> None:
    for m in module.modules():
        if next(m.parameters(recurse=False), None) is not None:
            m.reset_parameters()  # type: ignore[operator]


__all__ = [
    "ACTIVATIONS",
    "KINDS",
    "Architecture",
    "AutoencoderModule",
    "ChannelsFirst",
    "ChannelsLast",
    "Standardizer",
    "auto_activation",
    "auto_hidden",
    "build_model",
]
