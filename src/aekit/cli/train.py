"""``aekit train``: train an autoencoder on a store."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aekit.cli.command import add_command
from aekit.errors import AekitError
from aekit.params import SETTINGS, Bool, Choice, Int, Real, Setting, Threads, Widths, WindowLength

# config key -> setting, for the settings that have a flag here
FLAGS = {key: setting for key, setting in SETTINGS.items() if setting.flag}

EXAMPLES = """examples:
  aekit train data/digits.zarr --out runs/digits --latent-dim 8 --hidden 256,64
  aekit train --config configs/digits.toml --out runs/digits --set train.epochs=20
  aekit train --out runs/digits --resume                # continue after a crash or a kill
  aekit train data/digits.zarr --out runs/lr --find-lr  # learning-rate range test only
  aekit train data/digits.zarr --out runs/d2 --nproc 2  # 2 processes (torchrun, DDP)
  torchrun --nproc-per-node 4 -m aekit train data/big.zarr --out runs/big  # the same, by hand

Every option is also a config key (see 'aekit validate' and configs/); precedence, lowest first:
defaults, --config FILE, the options below, --set section.key=value.
"""


def parse_hidden(text: str) -> list[int] | str:
    if text.lower() == "none":
        return []
    if text.lower() == "auto":
        return "auto"
    try:
        widths = [int(w) for w in text.split(",")]
    except ValueError:
        widths = []
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(
            f"widths are comma-separated such as 512,256, or none, or auto; not {text!r}"
        )
    return widths


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "train",
        help="train an autoencoder on a store, streaming from disk",
        description=(
            "Train on the store's training split, validate on its validation split, checkpoint, "
            "and write RUN/config.toml, metrics.csv, checkpoints/, model.safetensors and "
            "model.json. Exit code 3 when the loss diverges (NaN or infinite)."
        ),
        epilog=EXAMPLES,
        run=run,
        writes=_writes,
        makes_folder=True,
    )
    parser.add_argument("store", nargs="?", help="store written by 'aekit ingest'")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--config", help="TOML or YAML config file")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, e.g. train.epochs=20 (repeatable)",
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument(
        "--find-lr",
        action="store_true",
        help="run a learning-rate range test, plot it and suggest a rate",
    )
    _add_setting_flags(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="processes on this machine (launches torchrun; default 1)",
    )


def _flag_type(setting: Setting) -> dict[str, Any]:
    rule = setting.rule
    if isinstance(rule, Bool):  # a switch: given, it sets True; absent, the config decides
        return {"action": "store_const", "const": True}
    if isinstance(rule, Choice):
        return {"choices": rule.allowed}
    if isinstance(rule, Widths):
        return {"type": parse_hidden}
    if isinstance(rule, (Threads, WindowLength)) or (isinstance(rule, Int) and rule.auto):
        return {"type": _or_words(int, "a whole number")}
    if isinstance(rule, Real):
        return {"type": _or_words(float, "a number", rule.words) if rule.words else float}
    if isinstance(rule, Int) or isinstance(setting.default, int):
        return {"type": int}
    return {}


def _or_words(
    number: Callable[[str], Any], what: str, words: tuple[str, ...] = ("auto",)
) -> Callable[[str], Any]:
    """A flag's type: one of ``words`` or ``number(text)``, ``what`` naming it in the error (the
    value is checked against the setting's rule with the config)."""

    def parse(text: str) -> Any:
        if text in words:
            return text
        try:
            return number(text)
        except ValueError:
            expected = ", ".join(words) + f" or {what}"
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}") from None

    return parse


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One flag for each setting the table gives a flag; unset flags leave the config alone."""
    for key, setting in FLAGS.items():
        default = setting.default if setting.default != "" else "none"
        parser.add_argument(
            str(setting.flag),
            dest=_dest(key),
            help=f"{setting.help} ({key}; default {default})".replace("%", "%%"),
            **_flag_type(setting),
        )


def _dest(key: str) -> str:
    return key.replace(".", "__")


def run(args: argparse.Namespace) -> int:
    from aekit.runs.folder import is_first_rank, resolve

    if args.nproc < 1:
        raise AekitError(f"--nproc must be >= 1; got {args.nproc}.")
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return _launch(args.nproc, args.argv)
    out = Path(args.out)
    overrides: dict[str, Any] = {
        key: getattr(args, _dest(key)) for key in FLAGS if getattr(args, _dest(key)) is not None
    }
    if args.find_lr:
        return _find_lr(args, out, overrides)
    flag_of = {key: str(setting.flag) for key, setting in FLAGS.items()}
    config = resolve(args.store, out, args.config, overrides, args.set, args.resume, flag_of)
    if args.quiet:  # how much to print is not part of the run: allowed with --resume too
        config.log.progress = "none"
    from aekit.runs.training import run_training  # torch, once the config is known to be good

    ae = run_training(config, out, resume=args.resume)
    last = ae.history_[-1]
    if not args.quiet and is_first_rank():  # under torchrun, once for the job
        print(f"loss: {ae.loss_} (model.loss = {config.model.loss})")
        print(
            f"trained {len(ae.history_)} epochs ({ae.stop_reason_}); "
            f"val_loss {last.get('val_loss', float('nan')):.4g}; wrote {out}"
        )
        caution = getattr(ae, "threshold_info_", {}).get("caution")
        if caution:
            print(f"warning: the anomaly threshold was {caution}", file=sys.stderr)
        print(f"next: aekit report {shlex.quote(str(out))}")
    return 0


def _writes(args: argparse.Namespace) -> str | None:
    """The run folder, held by the process that writes it: not by the launcher of torchrun
    (its first worker holds it), nor by the other workers."""
    from aekit.runs.folder import is_first_rank

    launching = args.nproc > 1 and "WORLD_SIZE" not in os.environ
    return None if launching or not is_first_rank() else args.out


def _launch(nproc: int, argv: list[str]) -> int:
    """Run this same command under torchrun with ``nproc`` processes on this machine."""
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            rest.append(arg)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "aekit",
        *rest,
    ]
    code = subprocess.run(command, check=False).returncode
    if code:
        print(
            f"aekit train: a worker process failed (exit {code}); its error is above.",
            file=sys.stderr,
        )
    return code


def _find_lr(args: argparse.Namespace, out: Path, overrides: dict[str, Any]) -> int:
    from aekit.analysis.plots import LRRangeDisplay, save_figure
    from aekit.config import load_config
    from aekit.runs.training import plan_for
    from aekit.training.lr_finder import find_lr

    if args.store:
        overrides = {"data.store": args.store, **overrides}
    config = load_config(args.config, overrides, args.set)
    p = plan_for(config)
    result = find_lr(p.model, p.optimizer, p.objective, p.sources.train, p.device)
    out.mkdir(parents=True, exist_ok=True)
    path = save_figure(
        LRRangeDisplay(result.lrs, result.losses, result.suggestion).plot().figure_,
        out / "lr_find.png",
    )
    print(
        f"suggested learning rate: {result.suggestion:.2g} (plot: {path}); "
        f"use --learning-rate {result.suggestion:.2g}"
    )
    return 0
