"""The typed run configuration: a TOML or YAML file, dotted overrides, strict keys and types.

Precedence, lowest first: defaults, the file, command-line flags, ``--set key=value``. An unknown
key or a value of the wrong type is an error that names the key; the resolved configuration is
saved as ``RUN/config.toml`` so that every run can be repeated exactly.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from aekit.atomic import write_text
from aekit.errors import AekitError, SettingError
from aekit.params import (
    PARAMS,
    SETTINGS,
    Int,
    Keywords,
    Network,
    Real,
    Spec,
    Threads,
    Widths,
    WindowLength,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class _Section(BaseModel):
    # strict: "3" is not an int and 1 is not a bool; extra="forbid": typos are errors
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)
    section: ClassVar[str] = ""

    @field_validator("*")
    @classmethod
    def _follows_rule(cls, value: Any, info: ValidationInfo) -> Any:
        # Types and numeric bounds are pydantic's; choices, widths, specs and numbers that may
        # be 'auto' are the table's
        setting = SETTINGS.get(f"{cls.section}.{info.field_name}")
        if setting is not None and not setting.rule.field_bounds():
            problem = setting.problem(value)
            if problem is not None:
                raise ValueError(f"should be {problem}")
        return value


def _field(key: str) -> Any:
    """The pydantic field of a config key: its default, bounds and help from the table."""
    setting = SETTINGS[key]
    kwargs: dict[str, Any] = {"description": setting.help, **setting.rule.field_bounds()}
    default = setting.default
    if isinstance(default, (list, dict)):
        return Field(default_factory=lambda: type(default)(default), **kwargs)
    return Field(default, **kwargs)


class DataConfig(_Section):
    section = "data"
    store: str = _field("data.store")
    batch_size: int | Literal["auto"] = _field("data.batch_size")
    shuffle: str = _field("data.shuffle")
    shuffle_window: int = _field("data.shuffle_window")
    window_length: int | Literal["auto"] | None = _field("data.window_length")
    window_stride: int | Literal["auto"] = _field("data.window_stride")
    cache_dir: str = _field("data.cache_dir")
    cache_size: float = _field("data.cache_size")


class ModelConfig(_Section):
    section = "model"
    kind: str = _field("model.kind")
    # a string in a file; the estimator may give the function itself
    network: Any = _field("model.network")
    network_kwargs: dict[str, Any] = _field("model.network_kwargs")
    variational: bool = _field("model.variational")
    latent_dim: int = _field("model.latent_dim")
    hidden: list[int] | Literal["auto"] = _field("model.hidden")
    conv_channels: list[int] = _field("model.conv_channels")
    activation: str = _field("model.activation")
    loss: str = _field("model.loss")
    scale: str = _field("model.scale")
    noise: str = _field("model.noise")
    sparsity: str = _field("model.sparsity")
    trim: float | Literal["auto", "early"] = _field("model.trim")
    beta: float = _field("model.beta")
    kl_warmup: int = _field("model.kl_warmup")


class TrainConfig(_Section):
    section = "train"
    epochs: int | Literal["auto"] = _field("train.epochs")
    learning_rate: float = _field("train.learning_rate")
    weight_decay: float = _field("train.weight_decay")
    grad_clip: float = _field("train.grad_clip")
    schedule: str = _field("train.schedule")
    plateau_factor: float = _field("train.plateau_factor")
    plateau_patience: int = _field("train.plateau_patience")
    early_stopping_patience: int | Literal["auto"] = _field("train.early_stopping_patience")
    min_delta: float = _field("train.min_delta")
    val_every_steps: int = _field("train.val_every_steps")
    seed: int = _field("train.seed")
    device: str = _field("train.device")
    threads: int | Literal["auto"] = _field("train.threads")
    compile: bool = _field("train.compile")


class CheckpointConfig(_Section):
    section = "checkpoint"
    every_steps: int = _field("checkpoint.every_steps")
    keep_last: int = _field("checkpoint.keep_last")


class LogConfig(_Section):
    section = "log"
    progress: str = _field("log.progress")
    every_seconds: float = _field("log.every_seconds")
    tensorboard: bool = _field("log.tensorboard")


class RunConfig(_Section):
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    log: LogConfig = LogConfig()


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise AekitError(f"{path}: no such config file.")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".yaml", ".yml"):
            data = _load_yaml(text)
        elif path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            raise AekitError(f"{path}: config files end in .toml, .yaml or .yml.")
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise AekitError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from exc
    if not isinstance(data, dict):
        raise AekitError(f"{path}: expected sections such as [train]; got {type(data).__name__}.")
    return data


def _load_yaml(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:  # not a ValueError: give its line and what it expected
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ValueError(f"{where}{getattr(exc, 'problem', None) or exc}") from exc


def _parse_value(text: str) -> Any:
    """A ``--set`` value as TOML would read it (5, 1e-3, true, [64, 32], "x"); bare words are
    strings, so ``--set data.store=runs/x.zarr`` needs no quotes."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    if len(parts) != 2 or not all(parts):
        raise AekitError(
            f"--set {key}: keys are section.name, e.g. train.epochs; sections are "
            f"{', '.join(RunConfig.model_fields)}."
        )
    section = data.setdefault(parts[0], {})
    if not isinstance(section, dict):
        raise AekitError(f"--set {key}: '{parts[0]}' is not a section.")
    section[parts[1]] = value


def _explain(error: ValidationError, origin: str, flags: dict[str, str]) -> AekitError:
    first = error.errors()[0]
    # A union type adds its member's name ("int", "list[int]") to the location; keys are
    # section.name, so the first two parts are the key
    key = ".".join(str(p) for p in first["loc"][:2])
    origin = flags.get(key, origin)
    if first["type"] == "extra_forbidden":
        section = first["loc"][0] if len(first["loc"]) > 1 else None
        fields = (
            RunConfig.model_fields[str(section)].annotation.model_fields  # type: ignore[union-attr]
            if section in RunConfig.model_fields
            else RunConfig.model_fields
        )
        known = ", ".join(fields)
        return AekitError(f"{origin}: unknown key '{key}'; known keys here: {known}.")
    got = first.get("input")
    problem = first["msg"].removeprefix("Input ").removeprefix("Value error, ")
    if len(first["loc"]) > 2 and key in SETTINGS:  # a union: its first member's error misleads
        problem = f"should be {SETTINGS[key].rule.describe()}"

    return AekitError(f"{origin}: '{key}' {problem}; got {got!r}.")


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    sets: list[str] | None = None,
    flags: dict[str, str] | None = None,
) -> RunConfig:
    """Resolve a run configuration.

    Parameters
    ----------
    path : TOML or YAML file, optional
    overrides : dict of dotted key -> value, optional
        Values from command-line flags (already typed).
    sets : list of "section.key=value", optional
        ``--set`` overrides, applied last.
    flags : dict of dotted key -> command-line flag, optional
        Lets an error about a value given by a flag name the flag.
    """
    data: dict[str, Any] = _read_file(Path(path)) if path is not None else {}
    # Where each key's value came from, so that an error blames the file, the flag or --set
    # that gave it (a value read from --config is no flag's)
    given = {key: flag for key, flag in (flags or {}).items() if key in (overrides or {})}
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise AekitError(f"--set {item}: expected key=value, e.g. --set train.epochs=20.")
        _set_dotted(data, key.strip(), _parse_value(value.strip()))
        given[key.strip()] = f"--set {item}"
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, str(path) if path is not None else "config", given) from exc


def to_toml(config: RunConfig) -> str:
    """The configuration as TOML, every key written out (defaults included)."""
    lines = []
    for section, values in config.model_dump().items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table: { width = 64, dropout = 0.1 }
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if callable(value):  # a network given as a function: saved as its import path
        from aekit.families import name_of

        return _toml_value(name_of(value))
    raise SettingError(f"cannot write {value!r} in a config file (TOML)")


def save_config(config: RunConfig, path: Path) -> None:
    write_text(path, to_toml(config))


def config_from_params(params: dict[str, Any]) -> RunConfig:
    """The run description of an estimator's parameters (its seed is derived separately)."""
    data: dict[str, dict[str, Any]] = {}
    for name, setting in PARAMS.items():
        if setting.key is None or name == "random_state":
            continue
        value = params[name]
        if isinstance(setting.rule, Threads):
            value = "auto" if value is None else int(value)  # n_jobs=None: the library decides
        elif isinstance(setting.rule, Keywords):
            value = dict(value or {})
        elif isinstance(setting.rule, WindowLength):
            pass  # None (rows), 'auto' or an int, as given
        elif value is None:  # noise=None, sparsity=None, network=None: none, "" in a config
            value = ""
        elif isinstance(setting.rule, Widths) and value != "auto":
            value = [int(w) for w in value]
        elif isinstance(setting.rule, Int) and value != "auto":
            value = int(value)
        elif isinstance(setting.rule, Real) and not isinstance(value, str):
            value = float(value)
        section, key = setting.key.split(".")
        data.setdefault(section, {})[key] = value
    return RunConfig.model_validate(data)


def params_from_config(config: RunConfig, series: bool = False) -> dict[str, Any]:
    """The estimator parameters a run's config stands for (what ``model.json`` records).
    ``series``: whether the run trains on a series store; if not, ``data.window_length`` (which
    a store of rows ignores) is the estimator's None, under which ``fit`` reads rows."""
    sections = config.model_dump()
    params: dict[str, Any] = {}
    for name, setting in PARAMS.items():
        if setting.key is None:
            continue
        section, key = setting.key.split(".")
        value = sections[section][key]
        if isinstance(setting.rule, Widths) and value != "auto":
            value = tuple(value)
        elif isinstance(setting.rule, (Spec, Network)) and value == "":
            value = None
        elif isinstance(setting.rule, Keywords) and not value:
            value = None
        elif isinstance(setting.rule, Threads) and value == "auto":
            value = None
        params[name] = value
    if not series:
        params["window_length"] = None
    return params
