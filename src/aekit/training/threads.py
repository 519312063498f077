"""How many CPU threads the model's maths gets: from the model's size and the cores free.

torch's default is one thread per core. A small model loses from that: each operation is split
into pieces too small to pay for the threads' hand-offs, and the threads spin while they wait,
burning cores that other work (the data reader, other programs) needs. On a busy machine a
thread that is not scheduled holds up the others at every operation. ``python -m bench threads``
measured both (figures in the README): the Wine fit ran several times faster on one thread
beside a CPU hog, while the 784-128-784 stream gained from two threads on a quiet machine.
A fit counts the free cores again every few seconds (:class:`FreeCoreCounter`, read by the
training callback ``FollowFreeCores``), so a load that starts or ends during a long fit is
followed too.
"""

from __future__ import annotations

import math
import os
import time
from typing import NamedTuple

# Below this many floating-point operations per step (forward and backward), one thread is
# faster than two on the bench machine, quiet or loaded (``python -m bench threads``).
SMALL_STEP_FLOPS = 20e6

# How long the idle share of the cores is sampled for, when it matters
_SAMPLE_SECONDS = 0.1

# How often a fit whose thread count came from the free cores counts them again
FOLLOW_SECONDS = 5.0


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all cores together (Linux), else None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and waiting for I/O
    return idle, sum(fields[:8])


def _own_cpu_seconds() -> float:
    """CPU seconds this process has used, all its threads together."""
    times = os.times()
    return times.user + times.system


def _reading() -> tuple[float, float, float] | None:
    """(idle, total, this process's own) CPU time of all cores together in jiffies, or None
    where the machine's counters cannot be read (not Linux)."""
    machine = _cpu_times()
    if machine is None:
        return None
    return (*machine, _own_cpu_seconds() * os.sysconf("SC_CLK_TCK"))


def _free_between(
    before: tuple[float, float, float] | None, after: tuple[float, float, float] | None, cores: int
) -> int:
    """Cores not used by other processes between two readings (at least 1).

    This process's own use counts as free: it is this fit's threads and reader, or BLAS threads
    still spinning after the caller's last NumPy product (an OpenBLAS pool spins for a while
    before it sleeps), not a program competing for the cores.
    """
    if before is None or after is None:
        return cores
    idle, total, own = (b - a for a, b in zip(before, after, strict=True))
    if total <= 0:
        return cores
    return max(1, min(cores, round(cores * min(total, idle + own) / total)))


def free_cores() -> int:
    """This process's share of the cores other processes leave free right now (at least 1),
    sampled for 0.1 s."""
    counter = FreeCoreCounter()
    time.sleep(_SAMPLE_SECONDS)
    return counter.count()


class FreeCoreCounter:
    """Counts the cores other processes left free since its last count (or its creation): a
    count over seconds of training, with nothing slept. Under torchrun, this process's share."""

    def __init__(self) -> None:
        self.share, self.cores = _job_cores()
        self._last = _reading()

    def count(self) -> int:
        now = _reading()
        before, self._last = self._last, now
        return max(1, _free_between(before, now, self.cores * self.share) // self.share)


def _job_cores() -> tuple[int, int]:
    """(processes of this job on this machine, usable cores for each): torchrun's processes on
    one machine share its cores."""
    share = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return share, max(1, usable_cores() // share)


class ThreadChoice(NamedTuple):
    """A fit's thread count, why, and whether the fit counts the free cores again."""

    n: int
    why: str
    follow: bool = False  # chosen from the free cores: count them again during the fit


def choose_threads(requested: int | str, step_flops: float) -> ThreadChoice:
    """The number of threads for a model whose step costs ``step_flops``, and why.

    ``requested``: ``"auto"``, ``-1`` (every usable core) or a count. Under ``"auto"`` an
    ``OMP_NUM_THREADS`` set by the user is kept; otherwise a small step gets one thread and a
    larger one a thread per free core, counted again during the fit (``follow``). Under
    torchrun the processes on one machine split the cores.
    """
    _, cores = _job_cores()
    if requested == -1:
        return ThreadChoice(cores, f"{cores} threads: every usable core (threads=-1)")
    if requested != "auto":
        return ThreadChoice(int(requested), f"{requested} threads, as asked")
    if os.environ.get("OMP_NUM_THREADS"):
        import torch

        n = torch.get_num_threads()
        return ThreadChoice(n, f"{n} threads, from OMP_NUM_THREADS")
    mflops = step_flops / 1e6
    if cores == 1 or step_flops < SMALL_STEP_FLOPS:
        why = (
            f"1 thread: a step of this model is {mflops:.3g} MFLOP, too little to share "
            f"between threads (below {SMALL_STEP_FLOPS / 1e6:.3g})"
        )
        return ThreadChoice(1, why)
    free = free_cores()
    threads = "1 thread" if free == 1 else f"{free} threads"
    why = f"{threads}: {free} of {cores} cores free, for a step of {mflops:.3g} MFLOP"
    return ThreadChoice(free, f"{why}; counted again every {FOLLOW_SECONDS:g} s", follow=True)


def step_flops(model: object, sample_shape: tuple[int, ...], batch_size: int) -> float:
    """Floating-point operations of one training step: 3 x a forward pass (the backward pass
    costs about twice the forward), counted by torch on one sample."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    assert isinstance(model, torch.nn.Module)
    parameter = next(model.parameters(), None)
    x = torch.zeros((1, *sample_shape), device=parameter.device if parameter is not None else None)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return 3.0 * counter.get_total_flops() * batch_size
