"""``aekit report``: a self-contained HTML page about a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from aekit.cli.command import add_command


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "report",
        help="write RUN/report.html: the run, curves, reconstructions, latents, anomalies",
        description=(
            "Write one self-contained HTML file (figures embedded, nothing fetched) about a run: "
            "data, model, time and stopping reason; loss curves with a reading of them; "
            "reconstructions; the latent space; clustering against labels beside PCA; feature "
            "attributions (tables); anomaly scores; samples (VAE). Figures use held-out samples "
            "of STORE (default: the store the run was trained on)."
        ),
        epilog="examples:\n  aekit report runs/digits\n  aekit report runs/digits --store "
        "data/digits.zarr --samples 500 --out runs/digits/report-500.html",
        run=run,
        writes=_destination,
    )
    parser.add_argument("run_dir", metavar="RUN", help="run folder")
    parser.add_argument("--store", help="store to draw the figures from")
    parser.add_argument(
        "--samples", type=int, default=2000, help="held-out samples used (default: 2000)"
    )
    parser.add_argument("--out", help="the HTML file to write (default: RUN/report.html)")


def _destination(args: argparse.Namespace) -> str:
    return str(args.out or Path(args.run_dir) / "report.html")


def run(args: argparse.Namespace) -> int:
    from aekit.errors import AekitError
    from aekit.runs.report import write_report

    if args.samples < 10:
        raise AekitError(f"--samples must be at least 10; got {args.samples}.")
    from aekit.cli.apply_args import replacing

    destination = Path(_destination(args))
    if not destination.name.endswith((".html", ".htm")):
        raise AekitError(f"--out {destination} must end in .html: the report is one HTML page.")
    earlier = replacing(destination)
    path = write_report(args.run_dir, args.store, max_samples=args.samples, out=destination)
    if earlier:
        print(earlier)
    print(path)
    return 0
