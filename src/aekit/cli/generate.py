"""``aekit generate``: samples from a variational run, or a path between two samples."""

from __future__ import annotations

import argparse

from aekit.cli.apply_args import add_run_and_source, report
from aekit.cli.command import add_command, out_flag

EXAMPLES = """examples:
  aekit generate runs/faces-vae --n 64 --out samples.npy
  aekit generate runs/faces-vae --interpolate data/faces.zarr 12 345 --steps 10 --out path.npy
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "generate",
        help="draw new samples from a VAE run, or interpolate between two samples",
        description=(
            "Decode codes drawn from the prior N(0, I) of a variational run, or the codes on "
            "the straight line between two samples of a store (any run)."
        ),
        epilog=EXAMPLES,
        run=run,
        writes=out_flag,
    )
    add_run_and_source(parser, source=False)
    parser.add_argument("--n", type=int, default=64, help="samples to draw (default: 64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--interpolate",
        nargs=3,
        metavar=("STORE", "ROW_A", "ROW_B"),
        help="walk between the codes of two rows of a store instead of sampling",
    )
    parser.add_argument("--steps", type=int, default=8, help="interpolation steps (default: 8)")
    parser.add_argument("--out", required=True, help="output .npy, .parquet or .zarr")


def run(args: argparse.Namespace) -> int:
    from aekit.apply.generate import generate_file, interpolate_file
    from aekit.data.store import open_store
    from aekit.errors import AekitError
    from aekit.runs import load

    ae = load(args.run_dir)
    if args.interpolate:
        store_path, *rows = args.interpolate
        if not all(r.isdigit() for r in rows):
            raise AekitError(f"--interpolate takes STORE ROW_A ROW_B with row numbers; got {rows}.")
        summary = interpolate_file(
            ae, open_store(store_path), (int(rows[0]), int(rows[1])), args.out, steps=args.steps
        )
    else:
        summary = generate_file(ae, args.out, args.n, seed=args.seed)
    return report(args, summary, [f"wrote {summary['out']}: {summary['samples']} samples"])
