"""``aekit compress`` / ``decompress``: samples as quantised, entropy-coded latents."""

from __future__ import annotations

import argparse
import sys

from aekit.cli.apply_args import add_run_and_source, report, source_of
from aekit.cli.command import add_command, out_flag

# A share of clipped code values above this is worth a warning (a few stray ones are not)
CLIPPED_SHARE = 0.001


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "compress",
        help="compress samples into a .aek file of quantised, entropy-coded latents",
        description=(
            "Encode every sample, round each code dimension to STEP times its spread and "
            "entropy-code the result into FILE.aek (header: format version, run fingerprint, "
            "shapes, checksum). Prints bits per sample and the distortion (MSE, PSNR)."
        ),
        epilog=(
            "examples:\n  aekit compress runs/digits data/digits.zarr --out digits.aek\n"
            "  aekit compress runs/digits data/digits.zarr --out small.aek --step 0.2"
        ),
        run=run_compress,
        writes=out_flag,
    )
    add_run_and_source(parser)
    parser.add_argument("--out", required=True, help="output .aek file")
    parser.add_argument(
        "--step",
        type=float,
        default=0.05,
        help="quantisation step in units of each code dimension's spread; larger is smaller "
        "and coarser (default: 0.05)",
    )

    parser = add_command(
        sub,
        "decompress",
        help="decode a .aek file with the run that compressed it",
        description="Decode FILE.aek; a file from another run, or a corrupted one, is refused.",
        epilog="example:\n  aekit decompress runs/digits digits.aek --out digits.npy",
        run=run_decompress,
        writes=out_flag,
    )
    add_run_and_source(parser, source=False)
    parser.add_argument("file", help="the .aek file")
    parser.add_argument("--out", required=True, help="output .npy, .parquet or .zarr")


def run_compress(args: argparse.Namespace) -> int:
    from aekit.apply.compress import compress_file
    from aekit.runs import load

    ae = load(args.run_dir)
    with source_of(args, ae) as store:
        summary = compress_file(ae, store, args.out, step=args.step)
    values = summary["samples"] * ae.latent_dim
    if summary["clipped_values"] > CLIPPED_SHARE * values:
        print(
            f"warning: {summary['clipped_values']} of {values} code values lay beyond 32767 "
            f"steps and were clipped, which adds to the distortion: --step {args.step:g} is "
            "too fine for these data; a larger --step keeps them",
            file=sys.stderr,
        )
    return report(
        args,
        summary,
        [
            f"wrote {summary['out']}: {summary['samples']} samples, {summary['bytes']} bytes "
            f"({summary['bits_per_sample']:.1f} bits/sample; raw {summary['raw_bytes']} bytes, "
            f"{summary['ratio']:.1f}x smaller)",
            f"distortion: MSE {summary['mse']:.4g} in the data's units "
            f"({summary['mse_standardised']:.4g} standardised, as training and the report "
            f"measure), PSNR {summary['psnr']:.2f} dB (peak: the data's range, "
            f"{summary['psnr_peak']:.4g}); autoencoder alone: MSE {summary['mse_unquantised']:.4g}",
        ],
    )


def run_decompress(args: argparse.Namespace) -> int:
    from aekit.apply.compress import decompress_file
    from aekit.runs import load

    summary = decompress_file(load(args.run_dir), args.file, args.out)
    return report(args, summary, [f"wrote {summary['out']}: {summary['samples']} samples"])
