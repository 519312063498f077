"""A training run on a store, as ``aekit train`` performs it: config in, run folder out.

The run folder holds ``config.toml`` (resolved), ``metrics.csv``, ``checkpoints/`` (the last few
and ``best.pt``), ``model.safetensors`` and ``model.json``, and ``tensorboard/`` when asked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from aekit.config import RunConfig, load_config, save_config
from aekit.errors import AekitError, DivergenceError
from aekit.training.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LRSchedule,
    ReduceLROnPlateau,
    TrainingState,
)
from aekit.training.checkpoint import Checkpointer, latest_checkpoint, load_checkpoint, restore
from aekit.training.distributed import Dist, LossModule, restarted, setup, teardown
from aekit.training.loop import train
from aekit.training.progress import Progress, TensorBoard


def estimator_for(config: RunConfig) -> Any:
    """The estimator a config describes (its parameters are what ``model.json`` records)."""
    from aekit.estimator import Autoencoder

    t, m = config.train, config.model
    return Autoencoder(
        latent_dim=m.latent_dim,
        kind=m.kind,
        hidden=m.hidden if m.hidden == "auto" else tuple(m.hidden),
        conv_channels=tuple(m.conv_channels),
        loss=m.loss,
        noise=m.noise or None,
        sparsity=m.sparsity or None,
        beta=m.beta,
        kl_warmup=m.kl_warmup,
        activation=m.activation,
        epochs=t.epochs,
        batch_size=config.data.batch_size,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        patience=max(1, t.early_stopping_patience),
        random_state=t.seed,
        device=t.device,
    )


def run_training(config: RunConfig, out: Path, *, resume: bool = False) -> Any:
    """Train as ``config`` says, writing the run folder ``out``; return the fitted estimator.

    With ``resume`` the run continues from the newest checkpoint in ``out/checkpoints``, exactly
    where it stopped (same weights, optimiser, schedule, data order and position in the epoch).
    Under ``torchrun`` with several processes, each trains on its share of every global batch
    with DistributedDataParallel, and only rank 0 writes the run folder; a worker restarted by
    torchrun's elastic agent resumes from the last checkpoint.
    """
    d = setup(config.train.device)
    try:
        return _run(config, out, resume or (restarted() and _has_checkpoint(out)), d)
    finally:
        teardown()


def _has_checkpoint(out: Path) -> bool:
    return (out / "checkpoints").is_dir() and latest_checkpoint(out / "checkpoints") is not None


def _run(config: RunConfig, out: Path, resume: bool, d: Dist) -> Any:
    from aekit.apply.threshold import calibrate_on_store
    from aekit.data.store import open_store
    from aekit.runs import save_model

    if not config.data.store:
        raise AekitError("no store to train on: give STORE or set data.store in the config.")
    ae = estimator_for(config)
    try:
        store = open_store(config.data.store)
        fit = ae._prepare(store, d.rank, d.world_size)
    except ValueError as exc:  # the estimator names its parameter: say the config key
        raise AekitError(str(exc).replace("parameter of Autoencoder", "setting (model.*)")) from exc
    if d.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(config, out / "config.toml")
    t = config.train

    # Callbacks in the order they act at an epoch's end: decide, log, then checkpoint it all
    has_val = fit.val_data.n_samples > 0
    monitor = "val_loss" if has_val else "train_loss"
    callbacks: list[Callback] = list(fit.callbacks)
    if t.early_stopping_patience:
        callbacks.append(
            EarlyStopping(monitor, patience=t.early_stopping_patience, min_delta=t.min_delta)
        )
    if t.schedule in ("cosine", "onecycle"):
        callbacks.append(LRSchedule(t.schedule, t.learning_rate))
    elif t.schedule == "plateau":
        callbacks.append(ReduceLROnPlateau(monitor, t.plateau_factor, t.plateau_patience))
    # Only rank 0 logs and writes; every rank tracks the decisions, which all see the same
    # (reduced) losses and so take the same way
    if d.is_main:
        callbacks.append(CSVLogger(out / "metrics.csv", append=resume))
        if config.log.tensorboard:
            callbacks.append(TensorBoard(out / "tensorboard"))
    checkpointer = Checkpointer(
        out / "checkpoints",
        list(callbacks),
        config.model_dump(),
        every_steps=config.checkpoint.every_steps,
        keep_last=config.checkpoint.keep_last,
        monitor=monitor,
        write=d.is_main,
    )
    progress = Progress(config.log.progress if d.is_main else "none", config.log.every_seconds)

    restore_from = None
    if resume:
        path = latest_checkpoint(out / "checkpoints")
        if path is None:
            raise AekitError(f"{out} has no checkpoint to resume from; start it without --resume.")
        payload = load_checkpoint(path)

        def restore_from(state: TrainingState) -> None:
            restore(state, payload, checkpointer)

    objective = torch.compile(fit.objective) if t.compile else fit.objective
    loss_fn: Any = objective
    if d.active:
        # Gradients are averaged across ranks inside DDP's forward and backward; evaluation
        # (no gradients) bypasses the wrapper, as ranks may hold different numbers of batches
        ids = [d.local_rank] if fit.device.type == "cuda" else None
        wrapped = DistributedDataParallel(
            LossModule(fit.model, objective), device_ids=ids, forward_sync_buffers=False
        )

        def loss_fn(model: Any, x: torch.Tensor) -> torch.Tensor:
            return wrapped(x) if torch.is_grad_enabled() else objective(model, x)

    try:
        state = train(
            fit.model,
            fit.optimizer,
            loss_fn,
            fit.train_data,
            fit.val_data,
            epochs=t.epochs,
            device=fit.device,
            callbacks=[*callbacks, checkpointer, progress],
            grad_clip=t.grad_clip,
            val_every_steps=t.val_every_steps,
            resume=restore_from,
            reduce=d.sum,
        )
    except DivergenceError as exc:
        last = latest_checkpoint(out / "checkpoints")
        where = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
        raise DivergenceError(f"{exc} Training stopped; {where}.") from exc
    ae._finish(state)
    if d.is_main:
        # The whole held-out split (not this rank's share) sets the anomaly threshold
        calibrate_on_store(ae, store)
        save_model(ae, out)
    return ae


def resolve(
    store: str | None,
    out: Path,
    config_file: str | None,
    overrides: dict[str, Any],
    sets: list[str],
    resume: bool,
    flags: dict[str, str] | None = None,
) -> RunConfig:
    """The configuration of a new run, or the saved one of a run to resume."""
    saved = out / "config.toml"
    if restarted() and saved.is_file():  # torchrun restarted this worker: continue the run
        return load_config(saved)
    if resume:
        if store or config_file or overrides or sets:
            raise AekitError(
                "--resume continues a run with its saved config.toml; drop STORE and the other "
                "options."
            )
        if not saved.is_file():
            raise AekitError(f"{out} is not a run folder (no config.toml); check --out.")
        return load_config(saved)
    # Rank 0 creates the run folder; the other ranks may find it already made
    first_rank = int(os.environ.get("RANK", "0")) == 0
    if first_rank and (saved.exists() or (out / "metrics.csv").exists()):
        raise AekitError(
            f"{out} already holds a run; pass --resume to continue it, or choose another --out."
        )
    if store:
        overrides = {"data.store": store, **overrides}
    return load_config(config_file, overrides, sets, flags)
