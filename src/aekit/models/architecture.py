"""One record of a model's architecture, built once from the settings and the data's shape.

The model's factory, ``model.json``, the memory check, the export and the report all read this
record; nothing else resolves ``'auto'`` widths, the kind ``'vae'`` or the family's arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aekit.families import Factory, factory_of, name_of, path_of

OUTPUTS = ("standardized", "bernoulli")


@dataclass(frozen=True)
class Architecture:
    """What a model is, apart from its weights and the data's statistics.

    Attributes
    ----------
    family : str or callable
        ``'dense'``, ``'conv'``, a registered family's name, an import path
        ``'package.module:function'``, or the factory function itself (see
        :mod:`aekit.families`).
    sample_shape : tuple of int
        One sample: ``(F,)`` for tables, ``(H, W, C)`` for images.
    latent_dim : int
    variational : bool
        A Gaussian code (mean and log-variance heads), sampled while training.
    output : {'standardized', 'bernoulli'}
        Standardised units (with MSE), or logits of values in [0, 1] (with BCE).
    hidden, conv_channels, activation
        The built-in families' widths, channels and nonlinearity (resolved: never 'auto').
    network_kwargs : mapping
        Keyword arguments of any other family's factory.

    Examples
    --------
    >>> Architecture("dense", (20,), 4, hidden=(16,), activation="relu").describe()
    'dense 16'
    >>> Architecture("dense", (20,), 4, variational=True).to_dict()["variational"]
    True
    """

    family: str | Factory
    sample_shape: tuple[int, ...]
    latent_dim: int
    variational: bool = False
    output: str = "standardized"
    hidden: tuple[int, ...] = ()
    conv_channels: tuple[int, ...] = ()
    activation: str = "gelu"
    network_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, model: Any, sample_shape: Sequence[int], output: str) -> Architecture:
        """The architecture ``model`` (a run's ``[model]`` settings, or an estimator: anything
        with ``kind``, ``network``, ``hidden``, ...) describes for samples of ``sample_shape``."""
        shape = tuple(int(s) for s in sample_shape)
        network = getattr(model, "network", None)
        variational = bool(getattr(model, "variational", False)) or model.kind == "vae"
        family = model.kind if network in (None, "") else network
        if family == "vae":  # the kind's usual body, variational
            family = "conv" if len(shape) == 3 else "dense"
        if family not in ("dense", "conv"):  # the user's or a package's: its own arguments
            return cls(
                family, shape, int(model.latent_dim), variational, output,
                network_kwargs=dict(getattr(model, "network_kwargs", None) or {}),
            )  # fmt: skip
        return cls(
            family,
            shape,
            int(model.latent_dim),
            variational,
            output,
            hidden=auto_hidden(family, model.hidden, shape),
            conv_channels=tuple(int(c) for c in model.conv_channels) if family == "conv" else (),
            activation=auto_activation(model.activation, shape),
        )

    @property
    def built_in(self) -> bool:
        return self.family in ("dense", "conv")

    @property
    def name(self) -> str:
        """The family as a run records it (an import path for a function); a function with
        none cannot be recorded, and this says how to give it one."""
        return name_of(self.family)

    @property
    def label(self) -> str:
        """The family in words for messages: its name, path, or the function's own name."""
        if isinstance(self.family, str):
            return self.family
        return path_of(self.family) or str(getattr(self.family, "__qualname__", self.family))

    def factory(self) -> Factory:
        return factory_of(self.family)

    def factory_kwargs(self) -> dict[str, Any]:
        """The factory's keyword arguments: the settings of a built-in family, else the
        user's ``network_kwargs``."""
        if self.family == "dense":
            return {"hidden": self.hidden, "activation": self.activation}
        if self.family == "conv":
            return {
                "channels": self.conv_channels,
                "hidden": self.hidden,
                "activation": self.activation,
            }
        return dict(self.network_kwargs)

    def describe(self) -> str:
        """A few words for the report and the logs: 'dense 64', 'conv 32,64 + 128, variational'."""
        if self.family == "dense":
            body = "dense " + (",".join(map(str, self.hidden)) or "linear")
        elif self.family == "conv":
            body = "conv " + ",".join(map(str, self.conv_channels))
            body += f" + {','.join(map(str, self.hidden))}" if self.hidden else ""
        else:
            body = f"network {self.label}"
        return body + (", variational" if self.variational else "")

    def to_dict(self) -> dict[str, Any]:
        """The record as ``model.json`` keeps it (the family by name or import path)."""
        return {
            "family": self.name,
            "sample_shape": list(self.sample_shape),
            "latent_dim": self.latent_dim,
            "variational": self.variational,
            "output": self.output,
            "hidden": list(self.hidden),
            "conv_channels": list(self.conv_channels),
            "activation": self.activation,
            "network_kwargs": dict(self.network_kwargs),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Architecture:
        return cls(
            str(data["family"]),
            tuple(int(s) for s in data["sample_shape"]),
            int(data["latent_dim"]),
            bool(data["variational"]),
            str(data["output"]),
            tuple(int(w) for w in data["hidden"]),
            tuple(int(c) for c in data["conv_channels"]),
            str(data["activation"]),
            dict(data["network_kwargs"]),
        )


def auto_hidden(
    kind: str, hidden: Sequence[int] | str, sample_shape: Sequence[int]
) -> tuple[int, ...]:
    """The dense widths ``hidden`` stands for: itself, or for ``'auto'`` (128,) after
    convolutions, (64,) for inputs of at most 32 features and (512, 256) for larger ones."""
    if hidden != "auto":
        return tuple(int(w) for w in hidden)
    if kind == "conv" or (kind == "vae" and len(sample_shape) == 3):
        return (128,)
    return (64,) if int(np.prod(sample_shape)) <= 32 else (512, 256)


def auto_activation(activation: str, sample_shape: Sequence[int]) -> str:
    """The nonlinearity ``activation`` stands for: for ``'auto'``, tanh on small tables (at most
    32 features, where its smoothness gave steadier codes) and GELU otherwise."""
    if activation != "auto":
        return activation
    small_table = len(sample_shape) == 1 and int(np.prod(sample_shape)) <= 32
    return "tanh" if small_table else "gelu"
