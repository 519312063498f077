"""The typed run configuration: a TOML or YAML file, dotted overrides, strict keys and types.

Precedence, lowest first: defaults, the file, command-line flags, ``--set key=value``. An unknown
key or a value of the wrong type is an error that names the key; the resolved configuration is
saved as ``RUN/config.toml`` so that every run can be repeated exactly.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aekit.errors import AekitError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class _Section(BaseModel):
    # strict: "3" is not an int and 1 is not a bool; extra="forbid": typos are errors
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


class DataConfig(_Section):
    store: str = ""
    batch_size: int = Field(256, ge=1)


class ModelConfig(_Section):
    kind: Literal["dense", "conv", "vae"] = "dense"
    latent_dim: int = Field(2, ge=1)
    hidden: list[int] | Literal["auto"] = "auto"
    conv_channels: list[int] = Field(default_factory=lambda: [32, 64], min_length=1)
    activation: Literal["auto", "gelu", "tanh", "relu", "elu", "silu", "leaky_relu"] = "auto"
    loss: Literal["auto", "mse", "bce"] = "auto"
    noise: str = Field("", description="e.g. gaussian:0.3, mask:0.25, saltpepper:0.1")
    sparsity: str = Field("", description="e.g. l1:1e-4 or kl:0.05:1e-3")
    beta: float = Field(1.0, ge=0)
    kl_warmup: int = Field(10, ge=0, description="epochs of KL warm-up (vae)")


class TrainConfig(_Section):
    epochs: int = Field(100, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    grad_clip: float = Field(0.0, ge=0, description="max gradient norm; 0 for none")
    schedule: Literal["constant", "cosine", "onecycle", "plateau"] = "constant"
    plateau_factor: float = Field(0.5, gt=0, lt=1)
    plateau_patience: int = Field(5, ge=1)
    early_stopping_patience: int = Field(20, ge=0, description="0 turns early stopping off")
    min_delta: float = Field(0.0, ge=0)
    val_every_steps: int = Field(0, ge=0, description="0 validates at epoch ends only")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = False


class CheckpointConfig(_Section):
    every_steps: int = Field(0, ge=0, description="0 checkpoints at epoch ends only")
    keep_last: int = Field(2, ge=1)


class LogConfig(_Section):
    progress: Literal["auto", "bar", "lines", "none"] = "auto"
    every_seconds: float = Field(30.0, gt=0)
    tensorboard: bool = False


class RunConfig(_Section):
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    log: LogConfig = LogConfig()


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise AekitError(f"{path}: no such config file.")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            raise AekitError(f"{path}: config files end in .toml, .yaml or .yml.")
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise AekitError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from exc
    if not isinstance(data, dict):
        raise AekitError(f"{path}: expected sections such as [train]; got {type(data).__name__}.")
    return data


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
    # A union type adds its member's name ("list[int]") to the location: keep the field path
    path = [str(p) for p in first["loc"]]
    path = path[: next((i for i, p in enumerate(path) if "[" in p), len(path))]
    key = ".".join(path)
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
    problem = first["msg"].removeprefix("Input ")
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
    origin = str(path) if path is not None else "config"
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise AekitError(f"--set {item}: expected key=value, e.g. --set train.epochs=20.")
        _set_dotted(data, key.strip(), _parse_value(value.strip()))
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        origin = origin if not sets else f"{origin} with --set"
        raise _explain(exc, origin, flags or {}) from exc


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
    raise TypeError(f"cannot write {value!r} as TOML")


def save_config(config: RunConfig, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(to_toml(config))
    tmp.replace(path)
