"""``aekit train``: train an autoencoder on a store."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from aekit.errors import AekitError

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

# flag -> config key; flags left unset do not override the config file
FLAGS = {
    "latent_dim": "model.latent_dim",
    "hidden": "model.hidden",
    "activation": "model.activation",
    "kind": "model.kind",
    "conv_channels": "model.conv_channels",
    "noise": "model.noise",
    "sparsity": "model.sparsity",
    "beta": "model.beta",
    "loss": "model.loss",
    "batch_size": "data.batch_size",
    "epochs": "train.epochs",
    "learning_rate": "train.learning_rate",
    "patience": "train.early_stopping_patience",
    "schedule": "train.schedule",
    "seed": "train.seed",
    "device": "train.device",
}


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
    parser = sub.add_parser(
        "train",
        help="train an autoencoder on a store, streaming from disk",
        description=(
            "Train on the store's training split, validate on its validation split, checkpoint, "
            "and write RUN/config.toml, metrics.csv, checkpoints/, model.safetensors and "
            "model.json. Exit code 3 when the loss diverges (NaN or infinite)."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    parser.add_argument("--kind", choices=("dense", "conv", "vae"))
    parser.add_argument("--conv-channels", type=parse_hidden, help="e.g. 32,64 (conv, vae)")
    parser.add_argument("--noise", help="denoising: gaussian:0.3, mask:0.25 or saltpepper:0.1")
    parser.add_argument("--sparsity", help="code penalty: l1:1e-4 or kl:0.05:1e-3")
    parser.add_argument("--beta", type=float, help="KL weight of a vae (default 1)")
    parser.add_argument("--loss", choices=("auto", "mse", "bce"))
    parser.add_argument("--latent-dim", type=int)
    parser.add_argument("--hidden", type=parse_hidden, help="e.g. 512,256, none or auto")
    parser.add_argument("--activation")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--patience", type=int, help="early stopping patience; 0 for none")
    parser.add_argument("--schedule", choices=("constant", "cosine", "onecycle", "plateau"))
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="processes on this machine (launches torchrun; default 1)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from aekit.training.run import resolve, run_training

    if args.nproc < 1:
        raise AekitError(f"--nproc must be >= 1; got {args.nproc}.")
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return _launch(args.nproc, args.argv)
    out = Path(args.out)
    overrides: dict[str, Any] = {
        key: getattr(args, flag) for flag, key in FLAGS.items() if getattr(args, flag) is not None
    }
    if args.find_lr:
        return _find_lr(args, out, overrides)
    flag_of = {key: "--" + flag.replace("_", "-") for flag, key in FLAGS.items()}
    config = resolve(args.store, out, args.config, overrides, args.set, args.resume, flag_of)
    if args.quiet:  # how much to print is not part of the run: allowed with --resume too
        config.log.progress = "none"
    ae = run_training(config, out, resume=args.resume)
    last = ae.history_[-1]
    if not args.quiet:
        print(f"loss: {ae.loss_} (model.loss = {config.model.loss})")
        print(
            f"trained {len(ae.history_)} epochs ({ae.stop_reason_}); "
            f"val_loss {last.get('val_loss', float('nan')):.4g}; wrote {out}"
        )
    return 0


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
    from aekit.data.store import open_store
    from aekit.training.lr_finder import find_lr
    from aekit.training.run import estimator_for

    if args.store:
        overrides = {"data.store": args.store, **overrides}
    config = load_config(args.config, overrides, args.set)
    fit = estimator_for(config)._prepare(open_store(config.data.store))
    result = find_lr(fit.model, fit.optimizer, fit.objective, fit.train_data, fit.device)
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
