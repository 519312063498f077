"""``aekit demo``: the Wine walkthrough, autoencoder beside PCA."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from aekit.cli.command import add_command, out_flag


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "demo",
        help="run the Wine walkthrough: autoencoder vs PCA, plots and summary.json",
        description=(
            "Fit an autoencoder with a 3-d code to scikit-learn's Wine data in raw units and "
            "compare it with PCA(3) on held-out reconstruction error and clustering of the code."
        ),
        epilog="example: aekit demo --out runs/demo",
        run=run,
        writes=out_flag,
        makes_folder=True,
    )
    parser.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def run(args: argparse.Namespace) -> int:
    from aekit.cli.apply_args import replacing
    from aekit.runs.demo import summary_table, wine_demo

    started = time.perf_counter()
    earlier = replacing(Path(args.out) / "summary.json", f"the earlier demo in {args.out}")
    summary = wine_demo(args.out, seed=args.seed)
    if earlier:
        print(earlier)
    print(summary_table(summary))
    ratio = summary["heldout_mse_ratio_autoencoder_to_pca"]
    print(f"\nheld-out MSE, autoencoder / PCA: {ratio:.3f}")
    print(f"stopped: {summary['autoencoder']['stop_reason']}")
    print(f"wrote {args.out}/summary.json and plots in {time.perf_counter() - started:.1f} s")
    print(f"report: {summary['report']}")
    return 0
