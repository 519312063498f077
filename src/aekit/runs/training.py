"""A training run on a store, as ``aekit train`` performs it: config in, run folder out.

The fit itself is :mod:`aekit.training.fitting`'s, the estimator's too; a run adds what a
command-line run adds: the run folder (:class:`~aekit.runs.folder.RunFolder`), checkpoints and
exact resume, CSV and TensorBoard logs, progress, and several processes under ``torchrun``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from aekit.config import RunConfig, params_from_config, save_config
from aekit.data.store import open_store
from aekit.errors import AekitError, DivergenceError
from aekit.estimator import Autoencoder
from aekit.params import PARAMS
from aekit.runs.folder import RunFolder, restarted
from aekit.runs.model import save_model
from aekit.training.callbacks import Callback, CSVLogger, TrainingState
from aekit.training.checkpoint import Checkpointer, load_checkpoint, restore
from aekit.training.distributed import Dist, LossModule, setup, teardown
from aekit.training.fitting import Plan, derive_seed, plan, resolve_device, run, store_sources
from aekit.training.progress import Progress, TensorBoard


def run_training(config: RunConfig, out: Path, *, resume: bool = False) -> Autoencoder:
    """Train as ``config`` says, writing the run folder ``out``; return the fitted estimator.

    With ``resume`` the run continues from the newest checkpoint in ``out/checkpoints``, exactly
    where it stopped (same weights, optimiser, schedule, data order and position in the epoch).
    Under ``torchrun`` with several processes, each trains on its share of every global batch
    with DistributedDataParallel, and only rank 0 writes the run folder; a worker restarted by
    torchrun's elastic agent resumes from the last checkpoint.
    """
    folder = RunFolder(out)
    d = setup(config.train.device)
    try:
        has_checkpoint = folder.latest_checkpoint() is not None
        if resume and not has_checkpoint and d.is_main and not restarted():
            # Nothing to continue from: the run died before its first checkpoint
            print(f"{out} has no checkpoint yet: starting the run from its beginning.")
        resume = has_checkpoint and (resume or restarted())
        return _run(config, folder, resume, d)
    finally:
        teardown()


def plan_for(config: RunConfig, rank: int = 0, world_size: int = 1) -> Plan:
    """The fit a config describes on its store, for this process's share."""
    if not config.data.store:
        raise AekitError("no store to train on: give STORE or set data.store in the config.")
    store = open_store(config.data.store)
    if config.data.cache_dir:
        store.use_cache(config.data.cache_dir, int(config.data.cache_size * 2**30))
    device = resolve_device(config.train.device)
    seed = derive_seed(config.train.seed)
    sources = store_sources(
        store,
        config.data.batch_size,
        seed,
        order=config.data.shuffle,
        shuffle_window=config.data.shuffle_window,
        rank=rank,
        world_size=world_size,
        pin_memory=device.type == "cuda",
        window=(config.data.window_length, config.data.window_stride),
        device=device if device.type == "cuda" else None,
    )
    return plan(config, sources, seed=seed, device=device, rank=rank)


def _run(config: RunConfig, folder: RunFolder, resume: bool, d: Dist) -> Autoencoder:
    p = plan_for(config, d.rank, d.world_size)
    if d.is_main:
        folder.path.mkdir(parents=True, exist_ok=True)
        save_config(config, folder.config)
    # Only rank 0 logs and writes; every rank tracks the decisions, which all see the same
    # (reduced) losses and so take the same way
    logs: list[Callback] = []
    if d.is_main:
        logs.append(CSVLogger(folder.metrics, append=resume))
        if config.log.tensorboard:
            logs.append(TensorBoard(folder.tensorboard))
    checkpointer = Checkpointer(
        folder.checkpoints,
        [*p.callbacks, *logs],
        config.model_dump(),
        every_steps=config.checkpoint.every_steps,
        keep_last=config.checkpoint.keep_last,
        monitor=p.monitor,
        write=d.is_main,
    )
    progress = Progress(config.log.progress if d.is_main else "none", config.log.every_seconds)
    if d.is_main and config.log.progress != "none":
        print("\n".join(p.notes), flush=True)
    try:
        result = run(
            p,
            callbacks=[*logs, checkpointer, progress],
            loss_fn=_loss_fn(p, config, d),
            resume=_restorer(folder, checkpointer, p, config.data.store) if resume else None,
            reduce=d.sum,
            # The whole held-out split (not this rank's share) sets the anomaly threshold
            contamination=PARAMS["contamination"].default if d.is_main else None,
        )
    except DivergenceError as exc:
        last = folder.latest_checkpoint()
        where = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
        raise DivergenceError(f"{exc} Training stopped; {where}.") from exc
    ae = Autoencoder.from_result(result, params_from_config(config, result.windows is not None))
    if d.is_main:
        save_model(ae, folder.path)
        store = getattr(p.sources.train, "store", None)
        if store is not None and store.remote is not None and config.log.progress != "none":
            print(store.transfer_note(), flush=True)
    return ae


def _restorer(folder: RunFolder, checkpointer: Checkpointer, p: Plan, store: Any) -> Any:
    path = folder.latest_checkpoint()
    assert path is not None, "run_training resumes only where a checkpoint exists"
    payload = load_checkpoint(path)
    # A config.toml edited to name a store of another shape: said here, before any weight moves
    for name, tensor in p.model.state_dict().items():
        saved = payload["model"].get(name)
        if saved is not None and tuple(saved.shape) != tuple(tensor.shape):
            raise AekitError(
                f"{folder.config}: data.store = {store} holds samples of another shape than the "
                f"run trained on ({name}: {tuple(saved.shape)} in {path.name}, "
                f"{tuple(tensor.shape)} now); name the run's own store, or start a new run."
            )

    def restore_from(state: TrainingState) -> None:
        restore(state, payload, checkpointer)

    return restore_from


def _loss_fn(p: Plan, config: RunConfig, d: Dist) -> Any:
    if d.active:  # a trim leaves out the global batch's outliers, as one process would
        p.objective.gather = d.gather
    objective: Any = torch.compile(p.objective) if config.train.compile else p.objective
    if not d.active:
        return objective
    # Gradients are averaged across ranks inside DDP's forward and backward; evaluation
    # (no gradients) bypasses the wrapper, as ranks may hold different numbers of batches
    ids = [d.local_rank] if p.device.type == "cuda" else None
    wrapped = DistributedDataParallel(
        LossModule(p.model, objective), device_ids=ids, forward_sync_buffers=False
    )

    def loss_fn(model: Any, x: torch.Tensor, *share: tuple[int, float]) -> torch.Tensor:
        return wrapped(x, *share) if torch.is_grad_enabled() else objective(model, x)

    return loss_fn
