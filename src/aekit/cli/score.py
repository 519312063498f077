"""``aekit score``: anomaly scores, per-feature parts and flags against a calibrated threshold."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aekit.cli.apply_args import add_run_and_source, report, series_store_and_output, source_of
from aekit.cli.command import add_command, out_flag

EXAMPLES = """examples:
  aekit score runs/sensors data/today.zarr --out scores.parquet
  aekit score runs/sensors today.csv --out scores.parquet --fpr 0.001
  aekit score runs/sensors today.csv --out scores.parquet --contamination 0.05 --normal clean.csv
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "score",
        help="score every sample for anomaly and flag those above the run's threshold",
        description=(
            "Write each sample's anomaly score (of the final model and of its copy from "
            "early in training, each over its median on training data, averaged: about 1 for "
            "a typical sample; see the guide), its flag against the run's threshold and, for "
            "tables, each feature's part of the score (error_<feature>, then code). Where the "
            "samples have two classes, print aekit's ROC-AUC and average precision beside PCA's "
            "and IsolationForest's. Training sets the threshold at the 1 % of held-out samples "
            "with the highest scores; --fpr or --contamination sets one anew on held-out "
            "normal data (the run's validation split, or --normal) for this output, and "
            "--save-threshold keeps it in the run for later scores."
        ),
        epilog=EXAMPLES,
        run=run,
        writes=out_flag,
    )
    add_run_and_source(parser)
    parser.add_argument("--out", required=True, help="output .parquet")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--fpr", type=float, help="target false-positive rate on normal data")
    group.add_argument("--contamination", type=float, help="share of anomalies expected")
    parser.add_argument(
        "--normal", help="normal data to calibrate on (default: the run's validation split)"
    )
    parser.add_argument(
        "--save-threshold",
        action="store_true",
        help="keep the threshold set by --fpr or --contamination in the run (RUN/model.json)",
    )
    parser.add_argument(
        "--no-contributions",
        action="store_true",
        help="leave out the per-feature parts (tables with many features)",
    )


def run(args: argparse.Namespace) -> int:
    from aekit.apply.maps import apply_to_store
    from aekit.errors import AekitError
    from aekit.runs import load
    from aekit.runs.calibration import recalibrate

    ae = load(args.run_dir)
    calibrating = args.fpr is not None or args.contamination is not None
    if hasattr(ae, "window_length_"):
        return _score_series(args, ae, calibrating)
    if not calibrating and (args.normal or args.save_threshold):
        flag = "--normal" if args.normal else "--save-threshold"
        raise AekitError(f"{flag} goes with a new threshold: give --fpr or --contamination too.")
    if calibrating:
        recalibrate(
            ae,
            args.run_dir,
            fpr=args.fpr,
            contamination=args.contamination,
            normal=args.normal,
            save=args.save_threshold,
        )
    with source_of(args, ae) as store:
        summary = apply_to_store(
            ae, store, args.out, "score", contributions=not args.no_contributions
        )
        beside = _beside_baselines(args.run_dir, store, summary)
    info = summary["threshold_info"]
    kept = ""
    if calibrating:
        kept = (
            "; saved in the run"
            if args.save_threshold
            else "; for this output only (--save-threshold keeps it in the run)"
        )
    if info.get("caution"):
        print(f"warning: the threshold was {info['caution']}", file=sys.stderr)
    return report(
        args,
        summary,
        [
            f"threshold {summary['threshold']:.6g} ({info['method']} {info['share']:g} on "
            f"{info.get('data', 'the held-out split')}, {info['samples']} samples{kept})",
            f"flagged {summary['flagged']} of {summary['rows']} samples "
            f"({100 * summary['flagged'] / summary['rows']:.2f} %)",
            *beside,
            f"wrote {summary['out']} in {summary['seconds']:.1f} s",
        ],
    )


def _beside_baselines(run_dir: str, store: Any, summary: dict[str, Any]) -> list[str]:
    """Where the scored samples have two classes (the rarer read as anomalies): aekit's
    ROC-AUC and average precision beside PCA's and IsolationForest's, fitted on the run's
    training rows (:mod:`aekit.analysis.baselines`); recorded in ``summary['detectors']``."""
    import numpy as np
    import pyarrow.parquet as pq

    from aekit.analysis.baselines import anomalous_class, compare
    from aekit.runs.folder import RunFolder

    anomalous = anomalous_class(store.labels)  # two classes, so both present
    if anomalous is None:
        return []
    training = RunFolder(run_dir).open_training_store()
    if training is None:
        return ["the run's training store is gone: no detectors to compare with"]
    scores = pq.read_table(summary["out"], columns=["score"]).column(0).to_numpy()
    blocks = (
        store.read(np.arange(start, min(start + 65_536, store.n)))
        for start in range(0, store.n, 65_536)
    )
    figures, fitted_on = compare(scores, anomalous, blocks, training)
    summary["detectors"] = figures
    shown = ", ".join(
        f"{name} {f['roc_auc']:.3f} / {f['average_precision']:.3f}" for name, f in figures.items()
    )
    return [
        f"ROC-AUC / average precision, the rarer class as anomalous: {shown} (PCA and "
        f"IsolationForest fitted on {fitted_on} training samples of {training.path})"
    ]


def _score_series(args: argparse.Namespace, ae: Any, calibrating: bool) -> int:
    """A model fitted on series: one row per time step of a series store (see
    :func:`aekit.apply.series.write_step_scores`)."""
    from aekit.apply.series import write_step_scores
    from aekit.errors import AekitError

    if calibrating:
        raise AekitError(
            "--fpr and --contamination set a threshold on samples; a series model's threshold "
            "is set on time steps when it is trained (train.contamination): drop the flag."
        )
    summary = write_step_scores(ae, *series_store_and_output(args, "score"))
    share = 100 * summary["flagged"] / max(1, summary["rows"])
    print(
        f"threshold {ae.threshold_:.6g} (on time steps); flagged {summary['flagged']} of "
        f"{summary['rows']} time steps ({share:.2f} %); wrote {summary['out']}"
    )
    return 0
