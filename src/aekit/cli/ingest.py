"""``aekit ingest``: read a source once into a store."""

from __future__ import annotations

import argparse

from aekit.cli.command import add_command
from aekit.errors import AekitError

EXAMPLES = """examples:
  aekit ingest photos/ data/photos.zarr --size 128x128 --channels 3
  aekit ingest measurements.csv data/meas.zarr --label-column label --on-error skip
  aekit ingest features.npy data/features.zarr --val-fraction 0.2 --seed 1
  aekit ingest recording.h5 data/rec.zarr --dataset signals/x
"""


def parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) == 2 and all(p.isdigit() and int(p) > 0 for p in parts):
        return int(parts[0]), int(parts[1])
    raise argparse.ArgumentTypeError(f"--size takes HEIGHTxWIDTH such as 128x128, not {text!r}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "ingest",
        help="read a source (images, .npy, CSV/Parquet, HDF5) once into a chunked store",
        description=(
            "Read SRC once, fix the train/validation split by the seed, compute normalisation "
            "statistics, and write the store STORE (a Zarr v3 group). A failed ingest leaves "
            "nothing at STORE."
        ),
        epilog=EXAMPLES,
        run=run,
        writes=lambda args: args.store,
        makes_folder=True,
    )
    parser.add_argument("src", help="image folder, .npy, .csv, .parquet or .h5 file")
    parser.add_argument("store", help="destination store path (must not exist)")
    parser.add_argument("--size", type=parse_size, help="image size after resizing, HxW")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=3, help="image channels")
    parser.add_argument("--label-column", help="CSV/Parquet column holding the labels")
    parser.add_argument(
        "--labels",
        metavar="FILE",
        help=".npy or HDF5 source: its labels, one per record (a .npy, or text one per line)",
    )
    parser.add_argument(
        "--class-names",
        metavar="NAMES",
        help="names of numeric labels, class 0 first: a,b,c or a text file, one name per line",
    )
    parser.add_argument(
        "--delimiter",
        type=_delimiter,
        help="of a CSV file: one character, or tab (default: told from its first lines)",
    )
    parser.add_argument("--dataset", help="dataset inside an HDF5 file")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="default 0.1")
    parser.add_argument("--seed", type=int, default=0, help="fixes the split (default 0)")
    parser.add_argument(
        "--on-error",
        choices=("fail", "skip"),
        default="fail",
        help="stop at a bad record (default) or skip and report it",
    )
    parser.add_argument(
        "--series",
        action="store_true",
        help="the source is a series (rows are time steps, columns channels) or a folder of "
        "them, one per file; split by time, trained on as windows",
    )
    parser.add_argument("--time-column", help="a series table's column of time stamps")
    parser.add_argument(
        "--dtype",
        choices=("float32", "float16"),
        help="how features are stored (default float32; images stay uint8): float16 halves the "
        "bytes read per sample",
    )
    parser.add_argument("--workers", type=int, help="image decoding processes (default: cores)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _delimiter(text: str) -> str:
    """A delimiter as typed: one character, or a name for the one a shell makes hard to type."""
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}
    value = named.get(text.lower(), text)
    if len(value) != 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not one character; give e.g. ';' or tab")
    return value


def _class_names(text: str | None) -> list[str] | None:
    """``--class-names``: a text file of one name per line where it names one, else a, b, c."""
    from pathlib import Path

    if text is None:
        return None
    if Path(text).is_file():
        try:
            return [line for line in Path(text).read_text().splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise AekitError(f"{text} (--class-names) cannot be read as text ({exc}).") from exc
    return text.split(",")


def run(args: argparse.Namespace) -> int:
    from aekit.data.ingest import ingest

    if args.workers is not None and args.workers < 1:
        raise AekitError(f"--workers must be >= 1; got {args.workers}.")
    store = ingest(
        args.src,
        args.store,
        labels=args.labels,
        class_names=_class_names(args.class_names),
        size=args.size,
        channels=args.channels,
        label_column=args.label_column,
        delimiter=args.delimiter,
        dataset=args.dataset,
        val_fraction=args.val_fraction,
        seed=args.seed,
        on_error=args.on_error,
        workers=args.workers,
        progress=False if args.quiet else None,
        series=args.series,
        time_column=args.time_column,
        dtype=args.dtype,
    )
    report = store.report
    if store.series is not None:
        layout = store.series
        print(
            f"wrote {store.path}: {len(layout.names)} series, {store.n} steps of "
            f"{store.sample_shape[0]} channel(s), the last {int(layout.held_out.sum())} steps "
            f"held out by time, {report['seconds']:.1f} s"
        )
        return 0
    print(
        f"wrote {store.path}: {store.n} samples of shape {store.sample_shape} ({store.dtype}), "
        f"{len(store.train_index)} train / {len(store.val_index)} validation, "
        f"{report['skipped_count']} skipped, {report['seconds']:.1f} s"
    )
    return 0
