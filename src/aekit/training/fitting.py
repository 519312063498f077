"""One fit path: a typed run description and batch sources in, a trained, calibrated model out.

``Autoencoder.fit`` and ``aekit train`` both come through here. :func:`plan` builds the model,
the objective, the optimiser and the callbacks that take training's decisions (early stopping,
schedules, KL warm-up) from a :class:`~aekit.config.RunConfig`; :func:`run` trains, finishes and
calibrates the anomaly threshold. A face adds only what it adds: the CLI its run folder,
checkpoints, progress and DDP (as callbacks, a loss wrapper and a reduction), the estimator its
progress line and the user's callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

from aekit.anomaly import SCALE_SAMPLES, weigh_score
from aekit.config import RunConfig
from aekit.data.arrays import ArrayBatches
from aekit.data.series import SeriesLayout
from aekit.data.stats import RunningStats
from aekit.data.store import Store
from aekit.data.stream import StoreBatches, inference_batch
from aekit.errors import SettingError
from aekit.memory import give_back_freed_memory
from aekit.models import Architecture, AutoencoderModule, build_model
from aekit.models.scaling import scaled_by
from aekit.objectives import Noise, Objective, Sparsity
from aekit.training.budget import auto_batch_size, budget_note, resolve_budget
from aekit.training.calibrate import Calibration, calibrate, with_threshold
from aekit.training.callbacks import (
    Callback,
    EarlyStopping,
    FollowFreeCores,
    GeneratorState,
    KLWarmup,
    LRSchedule,
    ReduceLROnPlateau,
    TrainingState,
)
from aekit.training.distributed import per_rank_batch
from aekit.training.loop import BatchSource, LossFn, Reduce, single_process, train
from aekit.training.series import (
    Windows,
    channel_weights,
    check_series,
    resolve_windows,
    series_step_scores,
)
from aekit.training.snapshot import EarlySnapshot, RobustWarmup, early_epoch, keep_early
from aekit.training.threads import choose_threads, step_flops


def derive_seed(random_state: Any) -> int:
    """The seed of a fit (weights, split, batch order) from an int, a RandomState or None."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SettingError(
            "The 'device' setting is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'."
        )
    return torch.device(name)


@dataclass
class Sources:
    """What a fit reads: batches to train and validate on, the whole held-out split (on one
    process, to calibrate the threshold on), and the training split's statistics."""

    train: BatchSource
    val: BatchSource
    held_out: BatchSource
    held_out_name: str
    scale_sample: BatchSource  # a seeded sample of training rows: the score's scales
    stats: dict[str, Any]
    sample_shape: tuple[int, ...]
    batch_size: int  # the global batch (all processes together), 'auto' resolved
    order_note: str = ""  # how the training data are ordered, and why: printed at the start
    feature_names: list[str] | None = None  # a table store's column names, carried to the model
    windows: Windows | None = None  # series: the windows read, and the steps they come from


def array_sources(
    X: np.ndarray, validation_fraction: float, batch_size: int | str, seed: int
) -> Sources:
    """Sources over an in-memory float32 array, split by ``validation_fraction``;
    ``batch_size`` 'auto' is chosen from the training rows (see :mod:`aekit.training.budget`).

    Memory: ``X`` is held once; batches are views gathered from it.
    """
    # Hold out a validation split; the order of both is fixed by the seed
    rows = np.random.default_rng(seed).permutation(len(X))
    n_val = min(round(validation_fraction * len(X)), len(X) - 1)
    val_rows, train_rows = rows[:n_val], rows[n_val:]
    stats = RunningStats(X.shape[-1])
    stats.update(X[train_rows])
    in_order = inference_batch(X.shape[1:])
    val = ArrayBatches(X, val_rows, in_order, seed, shuffle=False)
    has_val = n_val > 0
    held_rows = val_rows if has_val else train_rows
    batch = auto_batch_size(len(train_rows)) if batch_size == "auto" else int(batch_size)
    return Sources(
        train=ArrayBatches(X, train_rows, batch, seed),
        val=val,
        held_out=ArrayBatches(X, held_rows, in_order, seed, shuffle=False),
        held_out_name=f"the {'validation' if has_val else 'training'} split",
        scale_sample=ArrayBatches(X, scale_rows(train_rows, seed), batch, seed, shuffle=False),
        stats=stats.to_dict(),
        sample_shape=tuple(X.shape[1:]),
        batch_size=batch,
    )


def series_sources(
    X: Any,
    validation_fraction: float,
    window: tuple[int | str | None, int | str],
    batch_size: int | str,
    seed: int,
) -> Sources:
    """Sources over series in memory: one (T,) or (T, C) array or a list of them, the last
    ``validation_fraction`` of each held out (see :func:`array_series_sources`)."""
    steps, lengths = check_series(X)
    length, stride = window
    if length is None:
        raise SettingError("series need a window_length: 'auto' or a number of steps.")
    names = [f"series {i + 1}" for i in range(len(lengths))]
    layout = SeriesLayout.split(names, lengths, validation_fraction)
    return array_series_sources(steps, layout, (length, stride), batch_size, seed)


def array_series_sources(
    X: np.ndarray,
    layout: SeriesLayout,
    window: tuple[int | str, int | str],
    batch_size: int | str,
    seed: int,
) -> Sources:
    """Sources over series held in memory: ``X`` (steps, C), the series back to back as
    ``layout`` says, read as windows of ``window`` = (length, stride), each 'auto' or a
    number (see :mod:`aekit.data.series`). Memory: ``X`` once; batches are gathered windows."""
    windows = resolve_windows(*window, layout, lambda first, n: X[first : first + n])
    train, val = windows.starts("train"), windows.starts("validation")
    stats = RunningStats(X.shape[-1])
    for first, steps in layout.parts("train"):
        stats.update(X[first : first + steps])
    length = windows.length
    batch = auto_batch_size(len(train)) if batch_size == "auto" else int(batch_size)
    in_order = inference_batch((length, *X.shape[1:]))

    def source(starts: np.ndarray, size: int, shuffle: bool = False) -> ArrayBatches:
        return ArrayBatches(X, starts, size, seed, shuffle=shuffle, window_length=length)

    held = val if len(val) else train
    return Sources(
        train=source(train, batch, shuffle=True),
        val=source(val, in_order),
        held_out=source(held, in_order),
        held_out_name=f"the {'validation' if len(val) else 'training'} part of each series",
        scale_sample=source(scale_rows(train, seed), batch),
        stats=stats.to_dict(),
        sample_shape=(length, *X.shape[1:]),
        batch_size=batch,
        order_note="; ".join(windows.notes),
        windows=windows,
    )


def store_sources(
    store: Store,
    batch_size: int | str,
    seed: int,
    *,
    order: str = "auto",
    shuffle_window: int = 0,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
    window: tuple[int | str | None, int | str] = ("auto", "auto"),
    device: torch.device | None = None,
) -> Sources:
    """Sources streaming from a store's own split, this process's share of every epoch.

    ``batch_size`` is the global batch: each of ``world_size`` ranks reads its share of every
    global batch ('auto': chosen from the training rows, see :mod:`aekit.training.budget`).
    ``order`` and ``shuffle_window`` are ``data.shuffle`` and ``data.shuffle_window`` (see
    :class:`~aekit.data.stream.StoreBatches`). Memory is bounded by the batches in flight and
    the shuffle window, whatever the store's size. ``window``: a series store's window length
    and stride (see :mod:`aekit.data.series`; a length of None reads it as rows). ``device``:
    where the training batches are cut and the split may be kept (a GPU; see
    :mod:`aekit.data.device`); None cuts them on the host, the loop copying each batch.
    """
    windows = store_windows(store, window)
    train_rows = store.train_index if windows is None else windows.starts("train")
    val_rows = store.val_index if windows is None else windows.starts("validation")
    if batch_size == "auto":
        batch_size = auto_batch_size(len(train_rows), world_size)
    batch = per_rank_batch(int(batch_size), world_size)
    shared: dict[str, Any] = {"rank": rank, "world_size": world_size, "pin_memory": pin_memory}
    shared["window_length"] = 0 if windows is None else windows.length
    train = StoreBatches(
        store, train_rows, batch, seed, order=order, shuffle_window=shuffle_window,
        device=device, **shared,
    )  # fmt: skip
    # Validation and calibration batches as large as training ones keep the memory bound of the
    # epoch: larger ones (4096 rows of 784 floats) left holes in C's heap that grew the process
    # by kilobytes per row calibrated
    held_out, held_out_name = store_held_out(store, batch)
    if windows is not None:
        held = val_rows if len(val_rows) else train_rows
        held_out = StoreBatches(store, held, batch, 0, shuffle=False, **shared)
    return Sources(
        train=train,
        val=StoreBatches(store, val_rows, batch, seed, shuffle=False, **shared),
        held_out=held_out,
        held_out_name=held_out_name,
        # Not a shuffled stream, which would hold window buffers again after the epoch's
        scale_sample=StoreBatches(
            store,
            scale_rows(train_rows, seed),
            batch,
            seed,
            shuffle=False,
            prefetch_depth=0,
            **shared,
        ),
        stats=store.stats,
        sample_shape=tuple(
            store.sample_shape if windows is None else (windows.length, *store.sample_shape)
        ),
        batch_size=int(batch_size),
        order_note="; ".join(
            [f"data order: {train.order_choice}", *(windows.notes if windows else [])]
        ),
        feature_names=store.meta.get("source", {}).get("feature_names"),
        windows=windows,
    )


def store_windows(store: Store, window: tuple[int | str | None, int | str]) -> Windows | None:
    """The windows of a series store (None for a store of rows, or a length of None)."""
    length, stride = window
    layout = store.series
    if layout is None:
        if isinstance(length, int):
            raise SettingError(
                f"window_length is {length}, but {store.path} is a store of rows, not of series; "
                "ingest the series with 'aekit ingest --series', or drop window_length."
            )
        return None
    if length is None:
        return None
    return resolve_windows(length, stride, layout, store.read_span)


def scale_rows(index: np.ndarray, seed: int) -> np.ndarray:
    """At most ``SCALE_SAMPLES`` of the training rows ``index``, drawn by ``seed``: the sample
    on which the anomaly score's parts get their scales (see :mod:`aekit.anomaly`).

    Left in the order drawn, so that a store's stream gathers them row by row: a few rows spread
    over the whole store, read as whole blocks, would read all of it.
    """
    size = min(SCALE_SAMPLES, len(index))
    picked = np.random.default_rng(seed).choice(len(index), size=size, replace=False)
    return np.asarray(index)[picked]


def store_held_out(store: Store, batch_size: int | None = None) -> tuple[StoreBatches, str]:
    """The data a store's model did not learn from, whole and in order, and its name: the
    validation split, or the training split when there is none. ``batch_size``: rows per batch
    (default: :func:`~aekit.data.stream.inference_batch`)."""
    has_val = len(store.val_index) > 0
    rows = store.val_index if has_val else store.train_index
    name = f"the {'validation' if has_val else 'training'} split of {store.path}"
    batch_size = batch_size or inference_batch(store.sample_shape)
    return StoreBatches(store, rows, batch_size, 0, shuffle=False), name


def pick_loss(loss: str, stats: dict[str, Any]) -> str:
    """The loss ``loss`` stands for, given the training data's range ('auto': BCE in [0, 1])."""
    low, high = float(np.min(stats["min"])), float(np.max(stats["max"]))
    bounded = low >= 0 and high <= 1
    if loss == "bce" and not bounded:
        raise SettingError(
            f"The loss is 'bce', which needs data in [0, 1]; the training data range over "
            f"[{low:g}, {high:g}]. Scale them to [0, 1] or use loss 'mse'."
        )
    if loss == "auto":
        return "bce" if bounded else "mse"
    return loss


def build(config: RunConfig, sources: Sources, seed: int) -> tuple[AutoencoderModule, str]:
    """The model a config describes for these data, initialised from ``seed``, and its loss."""
    loss = pick_loss(config.model.loss, sources.stats)
    output = "bernoulli" if loss == "bce" else "standardized"
    architecture = Architecture.from_settings(config.model, sources.sample_shape, output)
    stats = scaled_by(config.model.scale, sources.stats)
    # fork_rng keeps the caller's global torch RNG untouched while seeding the init
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(
            architecture,
            np.asarray(stats["mean"]),
            np.asarray(stats["std"]),
            low=np.asarray(stats["min"]),
            high=np.asarray(stats["max"]),
        )
    return model, loss


@dataclass
class Plan:
    """Everything a fit trains with, built from the run description; a face may wrap the loss
    (DDP) or checkpoint ``callbacks``' states before :func:`run`."""

    config: RunConfig
    sources: Sources
    model: AutoencoderModule
    loss: str
    objective: Objective
    optimizer: torch.optim.Optimizer
    callbacks: list[Callback]
    monitor: str
    device: torch.device
    threads: int = 0  # torch's intra-op threads during the fit; 0 leaves torch's choice
    threads_note: str = ""  # how many, and why: printed at the start
    budget_note: str = ""  # the batch, epochs and patience, and which were chosen from the data
    # Seeds torch's global RNG for the fit: what a network's own layers draw while training (a
    # dropout) is then a function of the seed and the rank, as everything else is
    layer_seed: int = 0

    @property
    def notes(self) -> list[str]:
        """What a fit says before its first step: data order, schedule, threads."""
        return [n for n in (self.sources.order_note, self.budget_note, self.threads_note) if n]


def plan(
    config: RunConfig, sources: Sources, *, seed: int, device: torch.device, rank: int = 0
) -> Plan:
    """Build the model, objective, optimiser and deciding callbacks of a fit. The objective's
    noise comes from its own generator, seeded by ``seed`` and ``rank`` (ranks draw apart).
    ``auto`` epochs and patience are resolved here; the plan's config holds the numbers."""
    steps = len(sources.train)
    resolved = resolve_budget(config, sources.batch_size, steps)
    note = budget_note(config, resolved, steps)
    config = resolved
    m, t = config.model, config.train
    model, loss = build(config, sources, seed)
    model = model.to(device)
    noise_seed = int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])
    generator = torch.Generator(device=device).manual_seed(noise_seed)
    objective = Objective(
        Noise.parse(m.noise) if m.noise else None,
        Sparsity.parse(m.sparsity) if m.sparsity else None,
        m.beta,
        generator,
        m.trim,
    )
    # The fused kernel updates every tensor in one call: on a small model the per-tensor
    # Python loop of the default was the largest cost of a step on the CPU
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=t.learning_rate, weight_decay=t.weight_decay, fused=True
    )
    # Callbacks in the order they act at an epoch's end: the decisions come first
    monitor = "val_loss" if sources.val.n_samples > 0 else "train_loss"
    copy_epoch = early_epoch(int(t.epochs))
    callbacks: list[Callback] = [GeneratorState(generator), EarlySnapshot(copy_epoch)]
    if m.trim == "early":
        callbacks.append(RobustWarmup(objective, copy_epoch))
    if model.variational and m.kl_warmup:
        callbacks.append(KLWarmup(objective, m.kl_warmup))
    if t.early_stopping_patience:
        callbacks.append(
            EarlyStopping(monitor, patience=int(t.early_stopping_patience), min_delta=t.min_delta)
        )
    if t.schedule in ("cosine", "onecycle"):
        callbacks.append(LRSchedule(t.schedule, t.learning_rate))
    elif t.schedule == "plateau":
        callbacks.append(ReduceLROnPlateau(monitor, t.plateau_factor, t.plateau_patience))
    threads, threads_note = 0, ""
    if device.type == "cpu":
        train = sources.train
        batch = -(-train.n_samples // max(1, len(train)))
        choice = choose_threads(t.threads, step_flops(model, sources.sample_shape, batch))
        threads, threads_note = choice.n, f"compute: {choice.why}"
        if choice.follow:
            callbacks.append(FollowFreeCores())
    layer_seed = int(np.random.SeedSequence([seed, rank, 1]).generate_state(1)[0])
    return Plan(
        config, sources, model, loss, objective, optimizer, callbacks, monitor, device,
        threads, threads_note, note, layer_seed,
    )  # fmt: skip


@dataclass
class Result:
    """A trained model, its history and, when asked for, its calibrated threshold."""

    model: AutoencoderModule
    loss: str
    history: list[dict[str, float]]
    stop_reason: str
    sample_shape: tuple[int, ...]
    calibration: Calibration | None
    feature_names: list[str] | None = None
    windows: tuple[int, int] | None = None  # a fit on series: its windows' length and stride
    channel_weights: np.ndarray | None = None  # and each channel's weight in the step score


def run(
    p: Plan,
    *,
    callbacks: Sequence[Callback] = (),
    loss_fn: LossFn | None = None,
    resume: Callable[[TrainingState], None] | None = None,
    reduce: Reduce = single_process,
    contamination: float | None = 0.01,
) -> Result:
    """Train as planned, put the model in evaluation mode, give it its early copy for the
    anomaly score (see :mod:`aekit.training.snapshot`) and calibrate its threshold at
    ``contamination`` on the held-out split (``None``: no calibration, e.g. on ranks > 0)."""
    previous = torch.get_num_threads()
    if p.threads:
        torch.set_num_threads(p.threads)
    # The caller's RNG is left as it was; a checkpoint saves and restores the fit's own
    devices = []
    if p.device.type == "cuda":
        devices = [p.device.index if p.device.index is not None else torch.cuda.current_device()]
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(p.layer_seed)
            return _run(p, callbacks, loss_fn, resume, reduce, contamination)
    finally:
        torch.set_num_threads(previous)  # the caller's setting again, as an estimator should


def _run(
    p: Plan,
    callbacks: Sequence[Callback],
    loss_fn: LossFn | None,
    resume: Callable[[TrainingState], None] | None,
    reduce: Reduce,
    contamination: float | None,
) -> Result:
    t = p.config.train
    state = train(
        p.model,
        p.optimizer,
        loss_fn or p.objective,
        p.sources.train,
        p.sources.val,
        epochs=int(t.epochs),
        device=p.device,
        callbacks=[*p.callbacks, *callbacks],
        grad_clip=t.grad_clip,
        val_every_steps=t.val_every_steps,
        resume=resume,
        reduce=reduce,
    )
    p.model.eval()
    give_back_freed_memory()  # what follows adds its buffers to the memory of the epochs only
    snapshot = next(cb for cb in p.callbacks if isinstance(cb, EarlySnapshot))
    keep_early(p.model, snapshot, p.config.model.beta, _on_device(p.sources.scale_sample, p.device))
    windows = p.sources.windows
    if windows is None:  # a series' steps weigh each channel instead (channel_weights)
        weigh_score(p.model, lambda: _on_device(p.sources.scale_sample, p.device))
    give_back_freed_memory()
    weights = None
    if windows is not None:
        weights = channel_weights(p.model, p.config.model.beta, windows)
    calibration = None
    if contamination is not None:
        calibration = calibrate(
            p.model,
            p.config.model.beta,
            _on_device(p.sources.held_out, p.device),
            contamination=contamination,
        )
        calibration.info["data"] = p.sources.held_out_name
        if windows is not None:
            # The threshold is on each time step's score, what a series is scored by
            part = "validation" if len(windows.starts("validation")) else "train"
            steps = series_step_scores(p.model, p.config.model.beta, windows, part, weights)
            calibration = with_threshold(calibration, steps, contamination)
    return Result(
        p.model,
        p.loss,
        state.history,
        state.stop_reason,
        p.sources.sample_shape,
        calibration,
        p.sources.feature_names,
        None if windows is None else (windows.length, windows.stride),
        weights,
    )


def fit(
    config: RunConfig,
    sources: Sources,
    *,
    seed: int,
    device: torch.device,
    callbacks: Sequence[Callback] = (),
    contamination: float = 0.01,
    announce: bool = False,
) -> Result:
    """Plan and run a fit in this process (the estimator's path); ``announce`` prints the data
    order and the thread count chosen, and why."""
    p = plan(config, sources, seed=seed, device=device)
    for note in p.notes if announce else ():
        print(note)
    return run(p, callbacks=callbacks, contamination=contamination)


def _on_device(source: BatchSource, device: torch.device) -> Iterator[torch.Tensor]:
    for batch in source.batches(0):
        yield batch.to(device, non_blocking=True)
