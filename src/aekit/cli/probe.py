"""``aekit probe``: a few labels per class on the latents against the raw features."""

from __future__ import annotations

import argparse

from aekit.cli.apply_args import add_run_and_source, report
from aekit.cli.command import add_command


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "probe",
        help="accuracy of a classifier trained on K labels per class: latents vs raw features",
        description=(
            "Train a logistic regression on the codes of K labelled training samples per class, "
            "and the same on their raw features; score both on the store's validation split. "
            "Repeated over draws of the labelled samples."
        ),
        epilog="example:\n  aekit probe runs/digits data/digits.zarr --labels 10",
        run=run,
    )
    add_run_and_source(parser, source=False)
    parser.add_argument("store", help="a labelled store")
    parser.add_argument("--labels", type=int, required=True, help="labelled samples per class")
    parser.add_argument("--repeats", type=int, default=5, help="draws (default: 5)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def run(args: argparse.Namespace) -> int:
    from aekit.apply.probe import probe
    from aekit.data.store import open_store
    from aekit.runs import load

    s = probe(
        load(args.run_dir),
        open_store(args.store),
        args.labels,
        repeats=args.repeats,
        seed=args.seed,
    )
    return report(
        args,
        s,
        [
            f"{s['labels_per_class']} labels x {s['classes']} classes, scored on "
            f"{s['test_samples']} validation samples, {s['repeats']} draws",
            f"latent codes   accuracy {s['latent_accuracy']:.3f} +- {s['latent_accuracy_std']:.3f}",
            f"raw features   accuracy {s['raw_accuracy']:.3f} +- {s['raw_accuracy_std']:.3f}",
        ],
    )
