"""Model families: where the network between aekit's input scaling and its code comes from.

A family is a factory function, called as ``factory(sample_shape, latent_dim, **kwargs)``, that
returns two modules, ``(features, decoder)``:

- ``features`` maps standardised samples, shape ``(B, *sample_shape)``, to a flat vector
  ``(B, F)``. Images come channels last, ``(B, H, W, C)``, as stores hold them
  (:class:`~aekit.models.ChannelsFirst` turns them for ``nn.Conv2d``).
- ``decoder`` maps codes ``(B, latent_dim)`` to ``(B, *sample_shape)`` (or as many values),
  in standardised units, or logits for data in [0, 1].

aekit adds the rest around them: the input scaling, the code layer (``F`` is found by one
forward pass, never asked for), the variational heads when ``variational`` asks for them, and
the output mapping. ``latent_dim`` is for the decoder's first layer; ``features`` does not end
in the code.

Three ways to name a family:

- a built-in kind, ``dense`` or ``conv``, whose arguments come from the settings (``hidden``,
  ``conv_channels``, ``activation``);
- a name registered by an installed package under the entry-point group ``aekit.families``
  (the built-in kinds are registered there the same way), e.g. in its ``pyproject.toml``::

      [project.entry-points."aekit.families"]
      theirs = "their_package.networks:build"

- your own factory, given as ``network``: the function itself, or its import path
  ``"package.module:function"``. Its arguments are ``network_kwargs``.

Loading a run whose family is an import path imports that module, as any import does, and so
runs its top-level code; nothing else from a run is ever executed (weights are safetensors).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from aekit.errors import SettingError

GROUP = "aekit.families"
# The built-in kinds, registered in aekit's own pyproject.toml as any plugin's are; listed here
# too so that a source checkout that was never installed still has them
BUILT_IN = {"dense": "aekit.models.dense:dense_network", "conv": "aekit.models.conv:conv_network"}

Factory = Callable[..., Any]


@lru_cache(maxsize=1)
def registered() -> dict[str, str]:
    """Family names and the import paths of their factories, the built-in kinds first."""
    found = dict(BUILT_IN)
    for point in entry_points(group=GROUP):
        found.setdefault(point.name, point.value)
    return found


def family_names() -> list[str]:
    return list(registered())


def factory_of(family: str | Factory) -> Factory:
    """The factory a family names: a registered name, an import path, or the function itself.

    Examples
    --------
    >>> features, decoder = factory_of("dense")((6,), 2, hidden=(4,), activation="tanh")
    >>> features
    Sequential(
      (0): Flatten(start_dim=1, end_dim=-1)
      (1): Linear(in_features=6, out_features=4, bias=True)
      (2): Tanh()
    )
    >>> factory_of("aekit.models.dense:dense_network") is factory_of("dense")
    True
    """
    if callable(family):
        return family
    path = registered().get(family, family)
    if ":" not in path:
        raise SettingError(
            f"unknown model family '{family}'; use one of {family_names()} or give your own "
            "network as 'package.module:function'."
        )
    return import_factory(path)


def import_factory(path: str) -> Factory:
    """The function at ``package.module:function``; an import that fails names the path."""
    module_name, _, name = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in name.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise SettingError(
            f"network '{path}' cannot be imported ({type(exc).__name__}: {exc}); install or "
            "add to PYTHONPATH the package that defines it, or correct the path."
        ) from exc
    if not callable(target):
        raise SettingError(f"network '{path}' is a {type(target).__name__}, not a function.")
    return target


def path_of(factory: Factory) -> str | None:
    """The import path that gives ``factory`` back, or None where there is none (a lambda, a
    function of ``__main__`` or of a notebook, a closure)."""
    module = getattr(factory, "__module__", None)
    name = getattr(factory, "__qualname__", None)
    if not module or not name or module == "__main__" or "<" in name:
        return None
    path = f"{module}:{name}"
    try:
        return path if import_factory(path) is factory else None
    except SettingError:
        return None


def name_of(family: str | Factory) -> str:
    """How a run records a family: its registered name or import path."""
    if isinstance(family, str):
        return family
    path = path_of(family)
    if path is None:
        raise SettingError(
            f"network {getattr(family, '__qualname__', family)!r} cannot be saved: a run "
            "records its family by import path, and this function has none (a lambda, or "
            "defined in __main__ or a notebook). It fits and predicts as it is; to save or "
            "train it from the command line, define it at the top level of a module you can "
            "import and pass it (or 'package.module:function')."
        )
    return path
