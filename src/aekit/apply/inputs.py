"""What the apply commands read: a run's model and a source, as a store."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aekit.apply.batching import require_shape
from aekit.apply.fitted import FittedModel
from aekit.data.remote import is_remote
from aekit.data.store import Store, is_store, open_store
from aekit.errors import AekitError


@contextlib.contextmanager
def source_store(
    src: str | Path,
    ae: FittedModel,
    *,
    label_column: str | None = None,
    beside: str | Path | None = None,
    usual_label_column: str | None = None,
    on_error: str = "fail",
) -> Iterator[Store]:
    """``src`` as a store: opened if it is one, else ingested into a temporary store (removed
    afterwards) with the sample shape the model was trained on.

    Parameters
    ----------
    src : path-like
        A store, or anything ``aekit ingest`` reads (image folder, .npy, CSV/Parquet, HDF5).
    ae : Autoencoder
        The fitted model; its sample shape sets the image size and channels.
    label_column : str, optional
        Label column of a table source.
    usual_label_column : str, optional
        The label column of the table the run was trained on: a table source that has a column
        of that name, and no ``label_column`` given, reads it as its labels rather than
        refusing it as a feature that is not numeric.
    on_error : {'fail', 'skip'}
        A bad record of a source that is ingested: stop, or leave it out (counted on stderr).
    beside : path-like, optional
        The output the source is read for. The temporary store is then a hidden partial beside
        it (``.NAME.partial-input-*``), on the output's disk rather than in a small ``/tmp``,
        and a killed command's leftover is removed by the next command writing there. Default:
        the system's temporary folder (``TMPDIR``).
    """
    if is_remote(src):  # on object storage, only stores are read
        yield require_shape(open_store(src), ae.sample_shape_)
        return
    src = Path(src)
    if not src.exists():
        raise AekitError(f"{src} does not exist; give a store or a file 'aekit ingest' reads.")
    if is_store(src):
        yield require_shape(open_store(src), ae.sample_shape_)
        return
    from aekit.data.ingest import ingest

    shape = tuple(ae.sample_shape_)
    image_options: dict[str, Any] = {}
    if src.is_dir() and len(shape) == 3:
        image_options = {"size": (shape[0], shape[1]), "channels": shape[2]}
    if label_column is None and usual_label_column is not None:
        label_column = _if_a_column(src, usual_label_column)
    if beside is None or is_remote(beside) or not Path(beside).parent.is_dir():
        folder = Path(tempfile.mkdtemp(prefix="aekit-input-"))
    else:
        beside = Path(beside)
        folder = Path(tempfile.mkdtemp(prefix=f".{beside.name}.partial-input-", dir=beside.parent))
    try:
        # Every record in the "training" split: the split of a scored source means nothing
        store = ingest(
            src,
            folder / "input.zarr",
            val_fraction=0.0,
            label_column=label_column,
            on_error=on_error,
            progress=False,  # the command's bar follows; ingest's notes would name the temporary
            **image_options,
        )
        if store.report["skipped_count"]:
            print(
                f"note: left out {store.report['skipped_count']} bad record(s) of {src} "
                "(--on-error skip)",
                file=sys.stderr,
            )
        yield store
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _if_a_column(src: Path, name: str) -> str | None:
    """``name`` if ``src`` is a table with a column of that name, else None."""
    from aekit.data.ingest import TABLE_SUFFIXES
    from aekit.data.records import BadRecords
    from aekit.data.tables import TableSource

    if src.suffix.lower() not in TABLE_SUFFIXES:
        return None
    return name if name in TableSource(src, None, BadRecords(str(src))).features else None
