"""``aekit export``: a run's model as ONNX files for other runtimes."""

from __future__ import annotations

import argparse

from aekit.cli.apply_args import add_run_and_source, report
from aekit.cli.command import add_command, out_flag

EXAMPLES = """examples:
  aekit export runs/sensors --out deploy/sensors
  python -c "import onnxruntime as ort; print(ort.InferenceSession('deploy/sensors/scorer.onnx'))"
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "export",
        help="write the run's encoder, scorer and decoder as ONNX files",
        description=(
            "Write encoder.onnx (raw samples to codes), scorer.onnx (raw samples to the anomaly "
            "score and its flag against the run's threshold) and decoder.onnx (codes to "
            "samples), each with the standardisation inside and a batch of any size, and "
            "export.json and README.txt describing their inputs, outputs, feature names and "
            "threshold. Needs the onnx and onnxscript packages: pip install 'aekit[onnx]'."
        ),
        epilog=EXAMPLES,
        run=run,
        writes=out_flag,
    )
    add_run_and_source(parser, source=False)
    parser.add_argument("--out", required=True, help="folder to create")
    parser.add_argument(
        "--format", default="onnx", choices=["onnx"], help="file format (default: onnx)"
    )


def run(args: argparse.Namespace) -> int:
    from aekit.runs.export import export_run

    description = export_run(args.run_dir, args.out, format=args.format)
    files = ", ".join(description["files"])
    return report(args, description, [f"wrote {files}, export.json and README.txt to {args.out}"])
