"""Several processes or machines: PyTorch's own engine (``torchrun`` + DistributedDataParallel).

``torchrun`` starts one process per device and sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`setup` joins the process group (gloo on CPU, NCCL on GPU). Every rank
reads its own share of each epoch's global order from the store (see
:func:`aekit.data.stream.rank_share`); gradients are averaged by DDP; losses are summed across
ranks with :meth:`Dist.sum`; a trim judges every rank's losses (:meth:`Dist.gather`). Only
rank 0 writes the run folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from aekit.errors import AekitError

# A rank that waits this long for the others gives up with an error rather than hanging
_TIMEOUT = timedelta(minutes=10)


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over all ranks (identity for one process)."""
        if not self.active:
            return values
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def gather(self, values: torch.Tensor) -> torch.Tensor:
        """Every rank's ``values`` (the same shape on each), concatenated in rank order."""
        parts = [torch.empty_like(values) for _ in range(self.world_size)]
        dist.all_gather(parts, values.contiguous())
        return torch.cat(parts)


def setup(device: str) -> Dist:
    """Join the process group when launched by ``torchrun`` with more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        # torchrun's agent keeps one key-value store across restarts; a fresh prefix per attempt
        # stops restarted workers from reading the addresses their dead predecessors left there
        # (gloo then tries to connect to them and fails)
        agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
        store = dist.TCPStore(
            os.environ["MASTER_ADDR"],
            int(os.environ["MASTER_PORT"]),
            world,
            is_master=rank == 0 and not agent_store,
            timeout=_TIMEOUT,
        )
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        dist.init_process_group(
            "nccl" if use_cuda else "gloo",
            store=dist.PrefixStore(f"aekit/attempt-{attempt}", store),
            rank=rank,
            world_size=world,
            timeout=_TIMEOUT,
        )
    return Dist(rank, world, local_rank)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def per_rank_batch(batch_size: int, world_size: int) -> int:
    if batch_size % world_size:
        raise AekitError(
            f"data.batch_size {batch_size} is the global batch and must divide evenly among "
            f"{world_size} processes; use a multiple of {world_size}."
        )
    return batch_size // world_size


class LossModule(nn.Module):
    """The model and its objective as one module, so that DDP sees the loss computed in its
    ``forward`` (DDP synchronises gradients only for work done inside its wrapper's forward)."""

    def __init__(self, model: nn.Module, objective: nn.Module | object) -> None:
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, x: torch.Tensor, *share: tuple[int, float]) -> torch.Tensor:
        return self.objective(self.model, x, *share)  # type: ignore[operator]
