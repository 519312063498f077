"""What a fitted model is applied to, read in bounded batches: arrays and stores."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_array, validate_data

from aekit.data.remote import is_remote
from aekit.data.sources import is_channels_first
from aekit.data.store import Store, exists, is_store, open_store
from aekit.data.stream import in_order, inference_batch
from aekit.errors import AekitError, DataError


def as_store(X: Any) -> Store | None:
    """``X`` as a store when it is one (or the path of one), else None (an array); a path or URL
    that holds no store is refused, naming it."""
    if isinstance(X, Store):
        return X
    if not isinstance(X, (str, Path)):
        return None
    if is_store(X):
        return open_store(X)
    if exists(X) and not is_remote(X):
        raise DataError(
            f"{X} is not a store; ingest it first (aekit.ingest({str(X)!r}, STORE)), or pass "
            "its samples as an array."
        )
    raise DataError(f"{X} does not exist: no store there; check the path.")


def require_shape(store: Store, sample_shape: Sequence[int]) -> Store:
    """``store``, refused unless its samples have the shape the model was trained on."""
    if store.series is not None and tuple(sample_shape[1:]) == tuple(store.sample_shape):
        raise AekitError(
            f"{store.path} holds series, and the model reads windows of {sample_shape[0]} of "
            "their steps: 'aekit score' writes each step's score; for codes per window use "
            "Python (aekit.load(RUN).transform(STORE))."
        )
    if tuple(store.sample_shape) != tuple(sample_shape):
        raise AekitError(
            f"{store.path} holds samples of shape {tuple(store.sample_shape)}, but the "
            f"model was trained on samples of shape {tuple(sample_shape)}; give data of the "
            "kind the run was trained on."
        )
    return store


def store_batches(
    store: Store, sample_shape: Sequence[int], batch_size: int
) -> Iterator[torch.Tensor]:
    """Every sample of ``store``, in order, ``batch_size`` at a time; refused when its samples
    are not of the shape the model was trained on."""
    return in_order(require_shape(store, sample_shape), batch_size)


def array_chunks(X: np.ndarray, size: int) -> Iterator[torch.Tensor]:
    """Consecutive slices of ``size`` rows of an array, as tensors sharing its memory."""
    for start in range(0, len(X), size):
        yield torch.from_numpy(X[start : start + size])


def code_batches(
    X: Any, latent_dim: int, device: torch.device, sample_shape: tuple[int, ...]
) -> Iterator[torch.Tensor]:
    """Codes ``X``, checked as (n_samples, latent_dim), float32, in consecutive batches on
    ``device``, as many rows as a batch of samples of ``sample_shape`` (they decode to those)."""
    Z = np.asarray(X, dtype=np.float32)
    if Z.ndim != 2 or Z.shape[1] != latent_dim:
        raise ValueError(f"expected latents of shape (n_samples, {latent_dim}); got {Z.shape}.")
    for batch in array_chunks(Z, inference_batch(sample_shape)):
        yield batch.to(device)


def sample_batches(estimator: Any, X: Any, batch_size: int | None) -> Iterator[torch.Tensor]:
    """The samples of ``X`` in order, ``batch_size`` at a time (None: about 1 MiB of them, see
    :func:`~aekit.data.stream.inference_batch`), for a fitted estimator: ``X`` is a batch
    source (a split), a store (or its path), or an array checked as its samples."""
    batch_size = batch_size or inference_batch(estimator.sample_shape_)
    if hasattr(X, "batches") and hasattr(X, "n_samples"):
        return X.batches(0)
    store = as_store(X)
    if store is not None:
        return store_batches(store, estimator.sample_shape_, batch_size)
    return array_chunks(check_samples(estimator, X, reset=False), batch_size)


def map_batches(
    fn: Callable[[torch.Tensor], torch.Tensor], batches: Iterable[torch.Tensor]
) -> np.ndarray:
    """``fn`` applied to every batch without gradients, concatenated as one float32 array."""
    with torch.no_grad():
        out = [fn(batch).float().cpu().numpy() for batch in batches]
    if not out:
        return np.zeros((0,), dtype=np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


def check_samples(estimator: Any, X: Any, *, reset: bool) -> np.ndarray:
    """``X`` checked as an estimator's samples, float32: tables through scikit-learn's checks
    (``reset`` records the number and names of features), images (3-D or 4-D) as (n, H, W, C)
    of the shape the estimator was fitted on."""
    if getattr(X, "ndim", 2) not in (3, 4):
        with warnings.catch_warnings():
            # An array is taken in the fitted column order, as a store's rows are (a model
            # trained on a named table's store meets arrays all the time); a DataFrame's
            # names are checked against the fitted ones
            warnings.filterwarnings("ignore", "X does not have valid feature names", UserWarning)
            return validate_data(
                estimator, X, dtype=np.float32, reset=reset, ensure_min_samples=2 if reset else 1
            )
    X = check_array(X, dtype=np.float32, allow_nd=True, ensure_min_samples=2 if reset else 1)
    if is_channels_first(X.shape):
        raise ValueError(
            f"X has images of shape {X.shape[1:]}, channels first (PyTorch's (n, C, H, W)); the "
            "estimator takes (n, H, W, C): pass X.transpose(0, 2, 3, 1)."
        )
    X = X[..., None] if X.ndim == 3 else X
    fitted = getattr(estimator, "sample_shape_", X.shape[1:])
    if reset:
        estimator.n_features_in_ = int(np.prod(X.shape[1:]))
    elif X.shape[1:] != fitted:
        raise ValueError(
            f"X has samples of shape {X.shape[1:]}, but {type(estimator).__name__} was fitted "
            f"on samples of shape {fitted}."
        )
    return X
