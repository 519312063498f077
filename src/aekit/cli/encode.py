"""``aekit encode`` / ``reconstruct`` / ``denoise``: one pass of the model over a source."""

from __future__ import annotations

import argparse
from typing import Any

from aekit.cli.apply_args import add_run_and_source, report, series_store_and_output, source_of
from aekit.cli.command import add_command, out_flag

HELP = {
    "encode": "write the latent code of every sample (.npy, .parquet or .zarr store)",
    "reconstruct": "write every sample's reconstruction (.npy, .parquet or .zarr store)",
    "denoise": "write clean versions of noisy samples (a run trained with --noise)",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    for task, text in HELP.items():
        parser = add_command(
            sub,
            task,
            help=text,
            description=(
                f"{text[0].upper()}{text[1:]}, streaming in bounded memory; labels and ids go "
                "along (.npy: beside it in NAME.labels.npy and NAME.ids.txt). The output "
                "appears only when complete."
            ),
            epilog=(
                f"examples:\n  aekit {task} runs/digits data/digits.zarr --out codes.parquet\n"
                f"  aekit {task} runs/digits new_images/ --out out.npy"
            ),
            run=run,
            writes=out_flag,
            task=task,
        )
        add_run_and_source(parser)
        parser.add_argument("--out", required=True, help="output .npy, .parquet or .zarr")


def run(args: argparse.Namespace) -> int:
    import sys

    from aekit.apply.maps import apply_to_store
    from aekit.runs import load

    ae = load(args.run_dir)
    if hasattr(ae, "window_length_"):
        return _series(args, ae)
    if args.task == "denoise" and not ae.noise:
        print(
            f"aekit denoise: note: {args.run_dir} was trained without noise; its outputs are plain "
            "reconstructions.",
            file=sys.stderr,
        )
    with source_of(args, ae) as store:
        summary = apply_to_store(ae, store, args.out, args.task)
    return report(
        args,
        summary,
        [
            f"wrote {summary['out']}: {summary['rows']} samples in {summary['seconds']:.1f} s "
            f"({summary['samples_per_s']} samples/s)"
        ],
    )


def _series(args: argparse.Namespace, ae: Any) -> int:
    """A model fitted on series: ``encode`` writes one code per window of a series store (see
    :func:`aekit.apply.series.write_window_codes`); the other tasks are per step."""
    from aekit.apply.series import write_window_codes
    from aekit.errors import AekitError

    if args.task != "encode":
        raise AekitError(
            f"aekit {args.task}: the run was trained on series; 'aekit score' writes each time "
            f"step's score and its channels' shares, and Python gives each step's "
            "reconstruction (aekit.load(RUN).reconstruct(STORE))."
        )
    summary = write_window_codes(ae, *series_store_and_output(args, "encode"))
    print(
        f"wrote {summary['out']}: one code per window, {summary['rows']} windows of "
        f"{ae.window_length_} steps at stride {ae.window_stride_}"
    )
    return 0
