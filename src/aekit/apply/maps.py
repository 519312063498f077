"""Encode, reconstruct, denoise and score every sample of a store, streaming to a file.

Memory: one batch of inputs and outputs at a time (plus the store's labels, 8 bytes a sample),
whatever the store's size; outputs are written as they come and published when complete.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit.anomaly import score_terms
from aekit.apply.fitted import FittedModel
from aekit.apply.outputs import Output, check_output
from aekit.data.store import Store
from aekit.errors import AekitError
from aekit.objectives import Objective

BATCH = 4096  # samples drawn, or probed, at a time
TASKS = ("encode", "reconstruct", "denoise", "score")


def feature_names(store: Store | None, ae: Any = None) -> list[str] | None:
    """The column names of a table's features: the store's, else those the model was fitted
    with (None for images, or where neither has names)."""
    shape = ae.sample_shape_ if store is None else store.sample_shape
    if len(shape) != 1:
        return None
    names = None if store is None else store.meta.get("source", {}).get("feature_names")
    return list(names or getattr(ae, "feature_names_in_", [])) or None


def progress_bar(total: int, desc: str, show: bool | None) -> Any:
    from tqdm import tqdm

    # disable=None: a bar on a terminal only
    return tqdm(
        total=total,
        unit="sample",
        desc=desc,
        leave=False,
        disable=None if show is None else not show,
    )


def apply_to_store(
    ae: FittedModel,
    store: Store,
    out: str | Path,
    task: str,
    *,
    contributions: bool = True,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Run ``task`` on every sample of ``store`` and write the results to ``out``.

    Parameters
    ----------
    ae : Autoencoder
        A fitted model (``aekit.load(run)``).
    store : Store
    out : path-like
        ``.npy``, ``.parquet`` or ``.zarr`` (see :mod:`aekit.apply.outputs`); ``score`` writes
        ``.parquet``.
    task : {'encode', 'reconstruct', 'denoise', 'score'}
        ``score`` writes each sample's ``score`` (the anomaly score of :mod:`aekit.anomaly`,
        from reconstruction errors or a VAE's negative ELBO), ``anomaly`` (score above the
        run's threshold) and, for tables, each feature's part of the score
        (``error_<feature>``, summing to the score's reconstruction term; then ``code``, how
        unusual the code is, for a weighted score: the columns sum to the score).
    contributions : bool
        Write the per-feature parts for tables (``score`` only).

    Returns
    -------
    dict
        Rows written, seconds, samples per second; for ``score`` the threshold and the number
        of samples flagged.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}; got {task!r}")
    out = check_output(out, (".parquet",) if task == "score" else (".npy", ".parquet", ".zarr"))
    if task == "score" and not hasattr(ae, "threshold_"):
        raise AekitError("the run has no anomaly threshold; run 'aekit score' with --fpr.")
    compute, names, prefix, shape = _task(ae, store, task, contributions)
    output = Output(out, store.n, shape, has_labels=store.labels is not None, names=names,
                    prefix=prefix, class_names=store.class_names)  # fmt: skip
    labels = store.labels
    started = time.perf_counter()
    flagged = 0
    try:
        with progress_bar(store.n, task, progress) as bar, torch.no_grad():
            start = 0
            for batch in ae.batches(store):
                rows = np.arange(start, start + len(batch))
                values, extra = compute(batch)
                if task == "score":  # the score, then each feature's part when asked
                    extra = {"anomaly": values.reshape(len(values), -1)[:, 0] > ae.threshold_}
                    flagged += int(extra["anomaly"].sum())
                output.write(
                    values,
                    labels=None if labels is None else labels[rows],
                    ids=store.ids(rows),
                    split=store.split[rows],
                    extra=extra,
                )
                start += len(batch)
                bar.update(len(batch))
        output.commit(
            {"class_names": store.class_names, "source": {"kind": task, "path": str(store.path)}}
        )
    except BaseException:
        output.abort()
        raise
    seconds = time.perf_counter() - started
    summary: dict[str, Any] = {
        "task": task,
        "out": str(out),
        "rows": store.n,
        "seconds": round(seconds, 3),
        "samples_per_s": round(store.n / max(seconds, 1e-9)),
    }
    if task == "score":
        summary.update(threshold=ae.threshold_, threshold_info=ae.threshold_info_, flagged=flagged)
    return summary


def _task(
    ae: FittedModel, store: Store, task: str, contributions: bool
) -> tuple[Callable[[torch.Tensor], tuple[np.ndarray, dict[str, np.ndarray]]], Any, str, tuple]:
    """The per-batch computation of ``task``, with the output's column names and row shape."""
    model = ae.model_
    names = feature_names(store, ae)

    def numpy(t: torch.Tensor) -> np.ndarray:
        return t.float().cpu().numpy()

    if task == "encode":
        return (lambda x: (numpy(model.encode(x)), {})), None, "z", (ae.latent_dim,)
    if task in ("reconstruct", "denoise"):
        return (lambda x: (numpy(model(x)), {})), names, "x", tuple(store.sample_shape)

    objective = Objective(None, None, ae.beta)
    with_parts = contributions and len(store.sample_shape) == 1
    labels = names or [str(i) for i in range(int(np.prod(store.sample_shape)))]

    # A weighted score adds how unusual the code is to the errors: its own column, so that the
    # columns still sum to the score
    rest = ["code"] if model.score_weighted else []

    def score(x: torch.Tensor) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        parts, total = score_terms(objective, model, x)
        if not with_parts:
            return numpy(total), {}
        parts = parts.flatten(1)
        columns = [total[:, None], parts]
        if rest:
            columns.append((total - parts.sum(1))[:, None])
        # One block of columns, the score first: a column each would cost a copy each per batch
        return numpy(torch.cat(columns, dim=1)), {}

    if with_parts:
        names_out = ["score", *(f"error_{name}" for name in labels), *rest]
        return score, names_out, "score", (len(names_out),)
    return score, ["score"], "score", ()
