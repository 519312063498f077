"""Every setting of a run, declared once: its default, its constraint, its config key, its flag.

The estimator's parameter checks (``Autoencoder``), the typed config (:mod:`aekit.config`) and
the flags of ``aekit train`` all read :data:`SETTINGS`; nothing else lists a default or an allowed
value. A setting has a config key (``section.name``) when a training run can set it, an estimator
parameter when ``Autoencoder`` takes it, and a flag when ``aekit train`` offers one.

Examples
--------
>>> from aekit.params import SETTINGS
>>> SETTINGS["model.latent_dim"].rule.describe()
'an int from 1 to 1048576'
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aekit.errors import SettingError

# The families aekit ships; others come from packages that register them (see
# aekit.families); 'vae' is the kind's usual body, variational (dense for tables,
# conv for images), kept so that configs and runs written before 'variational' still work
KINDS = ("dense", "conv", "vae")
ACTIVATIONS = ("elu", "gelu", "leaky_relu", "relu", "silu", "tanh")
LOSSES = ("auto", "mse", "bce")
SCALES = ("feature", "shared")
DEVICES = ("auto", "cpu", "cuda")
SCHEDULES = ("constant", "cosine", "onecycle", "plateau")
PROGRESS = ("auto", "bar", "lines", "none")
ORDERS = ("global", "block")


class Rule:
    """A constraint on a value: ``check`` says whether it holds, ``describe`` says what it
    asks for, in words that complete "must be ..."."""

    def check(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def field_bounds(self) -> dict[str, Any]:
        """Bounds pydantic checks itself (so its messages name them); empty for most rules."""
        return {}


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# No layer is wider than this: a width beyond it is a typo on any machine (the memory a model
# needs is checked against the machine when it is built)
MAX_WIDTH = 1 << 20


@dataclass(frozen=True)
class Int(Rule):
    low: int
    auto: bool = False  # 'auto' is allowed beside the ints, and means "chosen from the data"
    high: int | None = None

    def check(self, value: Any) -> bool:
        if self.auto and value == "auto":
            return True
        return _is_int(value) and value >= self.low and (self.high is None or value <= self.high)

    def describe(self) -> str:
        ints = f"an int >= {self.low}" if self.high is None else (
            f"an int from {self.low} to {self.high}"
        )  # fmt: skip
        return f"'auto' or {ints}" if self.auto else ints

    def field_bounds(self) -> dict[str, Any]:
        # pydantic's bound cannot apply to 'auto': the rule is checked as a whole instead
        if self.auto:
            return {}
        return {"ge": self.low, **({"le": self.high} if self.high is not None else {})}


@dataclass(frozen=True)
class Real(Rule):
    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = True
    words: tuple[str, ...] = ()  # allowed beside the floats (trim's 'auto' and 'early')

    def check(self, value: Any) -> bool:
        if isinstance(value, str):
            return value in self.words
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            return False
        v = float(value)
        above = self.low < v if self.low_open else self.low <= v
        below = v < self.high if self.high_open else v <= self.high
        return above and below

    def describe(self) -> str:
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        floats = f"a float in the range {left}{self.low}, {self.high}{right}"
        return ", ".join(f"'{w}'" for w in self.words) + f" or {floats}" if self.words else floats

    def field_bounds(self) -> dict[str, Any]:
        if self.words:  # as Int's: the rule is checked as a whole
            return {}
        bounds = {("gt" if self.low_open else "ge"): self.low}
        if math.isfinite(self.high):
            bounds["lt" if self.high_open else "le"] = self.high
        return bounds


@dataclass(frozen=True)
class Choice(Rule):
    values: tuple[str, ...]
    auto: bool = False  # 'auto' is allowed beside the values, and means "chosen from the data"

    @property
    def allowed(self) -> tuple[str, ...]:
        return ("auto", *self.values) if self.auto else self.values

    def check(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.allowed

    def describe(self) -> str:
        return (
            f"'auto' or one of {list(self.values)}" if self.auto else f"one of {list(self.allowed)}"
        )


@dataclass(frozen=True)
class Widths(Rule):
    """Layer widths: a sequence of ints >= 1; ``empty`` allows ``()``, ``auto`` allows 'auto'."""

    empty: bool
    auto: bool

    def check(self, value: Any) -> bool:
        if self.auto and value == "auto":
            return True
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            return False
        return (self.empty or len(value) > 0) and all(
            _is_int(w) and 1 <= w <= MAX_WIDTH for w in value
        )

    def describe(self) -> str:
        ints = f"a sequence of ints from 1 to {MAX_WIDTH}"
        if self.empty:
            return f"{ints} (empty for none)" + (" or 'auto'" if self.auto else "")
        return f"{ints}, at least one"


@dataclass(frozen=True)
class Family(Rule):
    """A model family's name: a built-in kind, 'vae', or one another package registers."""

    def check(self, value: Any) -> bool:
        from aekit.families import family_names  # entry points: read when asked

        return isinstance(value, str) and (value in KINDS or value in family_names())

    def describe(self) -> str:
        from aekit.families import family_names

        return f"one of {sorted(set(KINDS) | set(family_names()))}"


@dataclass(frozen=True)
class Network(Rule):
    """A user's network: a factory function, or its import path ``package.module:function``;
    empty (or None) for none."""

    def check(self, value: Any) -> bool:
        if value in ("", None) or callable(value):
            return True
        module, sep, name = value.partition(":") if isinstance(value, str) else ("", "", "")
        return bool(sep) and all(
            part.isidentifier() for part in module.split(".") + name.split(".")
        )

    def describe(self) -> str:
        return "a function or its import path 'package.module:function' (empty for none)"


@dataclass(frozen=True)
class Keywords(Rule):
    """Keyword arguments: a mapping whose keys are names (None for none)."""

    def check(self, value: Any) -> bool:
        if value is None:
            return True
        return isinstance(value, dict) and all(
            isinstance(k, str) and k.isidentifier() for k in value
        )

    def describe(self) -> str:
        return "a mapping of argument names to values (None for none)"


@dataclass(frozen=True)
class WindowLength(Rule):
    """Steps per window of a series: an int >= 2, 'auto' (from the data), or None (rows)."""

    def check(self, value: Any) -> bool:
        return value in (None, "auto") or (_is_int(value) and 2 <= value <= MAX_WIDTH)

    def describe(self) -> str:
        return f"None, 'auto' or an int from 2 to {MAX_WIDTH}"


@dataclass(frozen=True)
class Bool(Rule):
    def check(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "True or False"


@dataclass(frozen=True)
class Spec(Rule):
    """A setting written as a short string (``gaussian:0.3``); empty or None for none."""

    parse: Callable[[str], Any]
    example: str

    def problem(self, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            return f"a string such as {self.example}"
        try:
            self.parse(value)
        except ValueError as exc:
            return str(exc)
        return None

    def check(self, value: Any) -> bool:
        return self.problem(value) is None

    def describe(self) -> str:
        return f"None or a string such as {self.example}"


@dataclass(frozen=True)
class Threads(Rule):
    """A thread count: a positive int, -1 for every core, or automatic ('auto'; ``None`` for
    the estimator's ``n_jobs``, as in scikit-learn)."""

    def check(self, value: Any) -> bool:
        return value in ("auto", None) or (_is_int(value) and (value == -1 or value >= 1))

    def describe(self) -> str:
        return "'auto' (or None), -1 or a positive int"


@dataclass(frozen=True)
class Anything(Rule):
    """No constraint here: the value is checked where it is used (e.g. ``random_state``)."""

    def check(self, value: Any) -> bool:
        return True

    def describe(self) -> str:
        return "any value"


def _parse_noise(spec: str) -> Any:
    from aekit.objectives import Noise  # torch, only when a noise is actually given

    return Noise.parse(spec)


def _parse_sparsity(spec: str) -> Any:
    from aekit.objectives import Sparsity

    return Sparsity.parse(spec)


_SAME = object()


@dataclass(frozen=True)
class Setting:
    """One setting.

    ``key`` is the config key (``None``: the estimator alone has it); ``param`` the estimator's
    parameter (``None``: runs alone have it); ``flag`` the option of ``aekit train``.
    ``estimator_default`` differs from ``default`` only with a reason, given in ``why``.
    """

    key: str | None
    default: Any
    rule: Rule
    help: str = ""
    param: str | None = None
    flag: str | None = None
    estimator_default: Any = _SAME
    why: str = ""

    @property
    def name(self) -> str:
        return self.param or str(self.key).split(".")[-1]

    @property
    def param_default(self) -> Any:
        return self.default if self.estimator_default is _SAME else self.estimator_default

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` ("must be ..."), or None."""
        if isinstance(self.rule, Spec):
            reason = self.rule.problem(value)
            return None if reason is None else f"None or a string ({reason})"
        return None if self.rule.check(value) else self.rule.describe()


_LIST = [
    Setting("data.store", "", Anything(), "store written by 'aekit ingest'"),
    Setting(
        "data.batch_size", "auto", Int(1, auto=True),
        "samples per optimiser step (all processes together); auto: from 32 up to 512 as the "
        "training data grow", param="batch_size", flag="--batch-size",
    ),
    Setting(
        "data.shuffle", "auto", Choice(ORDERS, auto=True),
        "epoch order: global (a fresh permutation; the store should fit in memory), block "
        "(whole blocks read in a shuffled order, rows shuffled within a window of blocks: any "
        "size, cold or warm), or auto (global when the store takes at most half the available "
        "memory)", flag="--shuffle",
    ),
    Setting(
        "data.shuffle_window", 0, Int(0),
        "blocks per shuffle window in block order; 0 for as many as 256 MiB of buffers hold",
    ),
    Setting(
        "data.window_length", "auto", WindowLength(), "steps per window of a series store; "
        "auto: the dominant period of the training part (16 to 256 steps, else 64); ignored "
        "for stores of rows", param="window_length", flag="--window-length",
        estimator_default=None, why="a 2-d array stays a table of rows, as before; 'auto' or a "
        "number makes fit read it as a series",
    ),
    Setting(
        "data.window_stride", "auto", Int(1, auto=True), "steps between the starts of training "
        "windows; auto: 1, or more where an epoch would exceed 100,000 windows",
        param="window_stride", flag="--window-stride",
    ),
    Setting(
        "data.cache_dir", "", Anything(),
        "store on object storage: local folder keeping the blocks read, so that later epochs "
        "read them from disk; empty for none",
    ),
    Setting(
        "data.cache_size", 10.0, Real(0),
        "GiB the local cache may hold for one store (filled, never evicted: a shuffled epoch "
        "reads every block alike)",
    ),
    Setting(
        "model.kind", "dense", Family(), "model family: dense, conv, vae (the kind's usual "
        "body, variational) or one a package registers", param="kind", flag="--kind",
    ),
    Setting(
        "model.network", "", Network(), "your own network instead of the kind's: the import "
        "path package.module:function of a factory (see aekit.families)",
        param="network", flag="--network", estimator_default=None,
    ),
    Setting(
        "model.network_kwargs", {}, Keywords(), "keyword arguments of the network's factory "
        "(a [model.network_kwargs] table)", param="network_kwargs", estimator_default=None,
        why="scikit-learn's convention: no mutable default (a dict would be shared by every "
        "estimator); None stands for no arguments",
    ),
    Setting(
        "model.variational", False, Bool(), "encode to a Gaussian and sample the code while "
        "training (a VAE), whatever the family", param="variational", flag="--variational",
    ),
    Setting(
        "model.latent_dim", 2, Int(1, high=MAX_WIDTH), "size of the code", param="latent_dim",
        flag="--latent-dim",
    ),
    Setting(
        "model.hidden", "auto", Widths(empty=True, auto=True),
        "dense hidden widths, e.g. 512,256, none or auto", param="hidden", flag="--hidden",
    ),
    Setting(
        "model.conv_channels", [32, 64], Widths(empty=False, auto=False),
        "channels of the strided convolutions, e.g. 32,64 (conv, vae)",
        param="conv_channels", flag="--conv-channels", estimator_default=(32, 64),
    ),
    Setting(
        "model.activation", "auto", Choice(ACTIVATIONS, auto=True), "hidden nonlinearity",
        param="activation", flag="--activation",
    ),
    Setting(
        "model.loss", "auto", Choice(LOSSES), "reconstruction loss", param="loss", flag="--loss",
    ),
    Setting(
        "model.scale", "feature", Choice(SCALES), "input standardisation: feature, each table "
        "column (an image's or series' channel) by its own mean and std; shared, one mean and std "
        "over all values, for columns in one unit such as pixels held as a table",
        param="scale", flag="--scale",
    ),
    Setting(
        "model.noise", "", Spec(_parse_noise, "gaussian:0.3"),
        "denoising: gaussian:0.3, mask:0.25 or saltpepper:0.1", param="noise", flag="--noise",
        estimator_default=None,
    ),
    Setting(
        "model.sparsity", "", Spec(_parse_sparsity, "l1:1e-4"),
        "code penalty: l1:1e-4 or kl:0.05:1e-3", param="sparsity", flag="--sparsity",
        estimator_default=None,
    ),
    Setting(
        "model.trim", "early", Real(0, 1, words=("auto", "early")), "which samples of each batch "
        "are left out of the update, so that anomalies in the training data are not learned: "
        "early, its outliers until the anomaly score's early copy, then none; auto, its "
        "outliers throughout; a share such as 0.1, its highest losses throughout; 0, none",
        param="trim", flag="--trim",
    ),
    Setting("model.beta", 1.0, Real(0), "KL weight of a vae", param="beta", flag="--beta"),
    Setting(
        "model.kl_warmup", 10, Int(0), "epochs of KL warm-up (vae)", param="kl_warmup",
    ),
    Setting(
        "train.epochs", "auto", Int(1, auto=True),
        "maximum passes over the training data; auto: what about 6,000 optimiser steps buy, "
        "5 to 300", param="epochs", flag="--epochs",
    ),
    Setting(
        "train.learning_rate", 1e-3, Real(0, low_open=True), "AdamW learning rate",
        param="learning_rate", flag="--learning-rate",
    ),
    Setting(
        "train.weight_decay", 1e-2, Real(0), "AdamW decoupled weight decay",
        param="weight_decay",
    ),
    Setting("train.grad_clip", 0.0, Real(0), "max gradient norm; 0 for none"),
    Setting(
        "train.schedule", "constant", Choice(SCHEDULES), "learning-rate schedule: constant, "
        "cosine or onecycle (per step), plateau (train.plateau_factor times the rate after "
        "train.plateau_patience epochs without improvement)",
        param="schedule", flag="--schedule",
    ),
    Setting("train.plateau_factor", 0.5, Real(0, 1, low_open=True), "LR factor on a plateau"),
    Setting("train.plateau_patience", 5, Int(1), "epochs without improvement before it acts"),
    Setting(
        "train.early_stopping_patience", "auto", Int(0, auto=True),
        "epochs without improvement before stopping; 0 turns early stopping off; auto: a "
        "quarter of the epochs, 5 to 30", param="patience", flag="--patience",
    ),
    Setting("train.min_delta", 0.0, Real(0), "smallest change that counts as improvement"),
    Setting("train.val_every_steps", 0, Int(0), "0 validates at epoch ends only"),
    Setting(
        "train.seed", 0, Anything(), "seed of weights, split and batch order",
        param="random_state", flag="--seed", estimator_default=None,
        why="scikit-learn's convention: None draws a fresh seed at each fit; a run saves its "
        "seed in config.toml, so that it can be repeated",
    ),
    Setting("train.device", "auto", Choice(DEVICES), "device", param="device", flag="--device"),
    Setting(
        "train.threads", "auto", Threads(),
        "CPU threads of the model's maths: auto gives a small model 1 and a larger one a thread "
        "per free core; -1 every core", param="n_jobs", flag="--threads", estimator_default=None,
        why="scikit-learn's convention: n_jobs=None lets the library decide",
    ),
    Setting("train.compile", False, Anything(), "compile the step with torch.compile"),
    Setting("checkpoint.every_steps", 0, Int(0), "0 checkpoints at epoch ends only"),
    Setting("checkpoint.keep_last", 2, Int(1), "checkpoints kept besides best.pt"),
    Setting("log.progress", "auto", Choice(PROGRESS), "progress output"),
    Setting("log.every_seconds", 30.0, Real(0, low_open=True), "seconds between plain lines"),
    Setting("log.tensorboard", False, Anything(), "write TensorBoard event files"),
    Setting(
        None, 0.1, Real(0, 1), "share of an in-memory array held out for validation",
        param="validation_fraction",
    ),
    Setting(
        None, 0.01, Real(0, 0.5, low_open=True, high_open=False),
        "share of held-out samples above the anomaly threshold", param="contamination",
    ),
    Setting(None, 0, Int(0), "1 prints one line per epoch", param="verbose"),
]  # fmt: skip

SETTINGS: dict[str, Setting] = {s.key or f"estimator.{s.param}": s for s in _LIST}
"""Settings by config key (``estimator.NAME`` for those only the estimator has)."""

PARAMS: dict[str, Setting] = {s.param: s for s in _LIST if s.param}
"""Settings by estimator parameter name."""


def require(rule: Rule, name: str, value: Any, owner: str = "Autoencoder") -> None:
    """Raise ``ValueError`` in the one message shape unless ``value`` follows ``rule``."""
    if not rule.check(value):
        raise invalid(name, rule.describe(), value, owner)


def check_param(name: str, value: Any, owner: str = "Autoencoder") -> None:
    """Raise ``ValueError`` in the one message shape if ``value`` breaks ``name``'s rule."""
    problem = PARAMS[name].problem(value)
    if problem is not None:
        raise invalid(name, problem, value, owner)


def invalid(name: str, requirement: str, value: Any, owner: str = "Autoencoder") -> SettingError:
    """The one message shape of a bad value: a ``ValueError`` to scikit-learn callers, exit 2 on
    the command line."""
    return SettingError(
        f"The '{name}' parameter of {owner} must be {requirement}. Got {value!r} instead."
    )
