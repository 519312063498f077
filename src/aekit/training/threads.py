"""How many CPU threads the model's maths gets: from the model's size and the cores free.

torch's default is one thread per core. A small model loses from that: each operation is split
into pieces too small to pay for the threads' hand-offs, and the threads spin while they wait,
burning cores that other work (the data reader, other programs) needs. On a busy machine a
thread that is not scheduled holds up the others at every operation. ``python -m bench threads``
measured both (figures in the README): the Wine fit ran several times faster on one thread
beside a CPU hog, while the 784-128-784 stream gained from two threads on a quiet machine.
"""

from __future__ import annotations

import math
import os
import time

# Below this many floating-point operations per step (forward and backward), one thread is
# faster than two on the bench machine, quiet or loaded (``python -m bench threads``).
SMALL_STEP_FLOPS = 20e6

# How long the idle share of the cores is sampled for, when it matters
_SAMPLE_SECONDS = 0.1


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


def free_cores(cores: int) -> int:
    """Cores not used by other processes right now (at least 1), sampled for 0.1 s.

    This process's own use in the sample counts as free: it is BLAS threads still spinning
    after the caller's last NumPy product (an OpenBLAS pool spins for a while before it
    sleeps), or a reader of this fit, not a program competing for the cores.
    """
    before = _cpu_times()
    if before is None:
        return cores
    own_before = _own_cpu_seconds()
    time.sleep(_SAMPLE_SECONDS)
    after = _cpu_times()
    assert after is not None
    own = (_own_cpu_seconds() - own_before) * os.sysconf("SC_CLK_TCK")  # in jiffies, as /proc
    idle, total = after[0] - before[0], after[1] - before[1]
    if total <= 0:
        return cores
    return max(1, min(cores, round(cores * min(total, idle + own) / total)))


def choose_threads(requested: int | str, step_flops: float) -> tuple[int, str]:
    """The number of threads for a model whose step costs ``step_flops``, and why.

    ``requested``: ``"auto"``, ``-1`` (every usable core) or a count. Under ``"auto"`` an
    ``OMP_NUM_THREADS`` set by the user is kept; otherwise a small step gets one thread and a
    larger one a thread per free core. Under torchrun the processes on one machine split them.
    """
    # Processes of one torchrun job on this machine share its cores
    share = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    cores = max(1, usable_cores() // share)
    if requested == -1:
        return cores, f"{cores} threads: every usable core (threads=-1)"
    if requested != "auto":
        return int(requested), f"{requested} threads, as asked"
    if os.environ.get("OMP_NUM_THREADS"):
        import torch

        n = torch.get_num_threads()
        return n, f"{n} threads, from OMP_NUM_THREADS"
    mflops = step_flops / 1e6
    if cores == 1 or step_flops < SMALL_STEP_FLOPS:
        return 1, (
            f"1 thread: a step of this model is {mflops:.3g} MFLOP, too little to share "
            f"between threads (below {SMALL_STEP_FLOPS / 1e6:.3g})"
        )
    free = max(1, free_cores(cores * share) // share)
    threads = "1 thread" if free == 1 else f"{free} threads"
    return free, f"{threads}: {free} of {cores} cores free, for a step of {mflops:.3g} MFLOP"


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
