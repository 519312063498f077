"""Training batches cut on the device: whole windows copied there, and a split kept there.

The host path gathers each batch's rows on the CPU and copies the batch: on a GPU the reader
then sets the pace for small models. Here the host only reads contiguous blocks into pinned
buffers; each window of blocks goes to the device in one copy, on a stream of its own, while
the device still computes on the window before, and batches are gathered on the device by
index. The order is the host's, a pure function of (seed, epoch): the device applies it and
never draws its own, so the batches are bitwise the host path's.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from aekit.data.blockread import Window, torch_dtype
from aekit.data.series import window_rows

DEVICE_CACHE_SHARE = 0.5
"""Share of the device's free memory (when the stream is made) a training split may take to
be kept there between epochs; the rest is for the model, the optimiser's state and the
activations. Where it does not fit, every epoch streams from the host."""


def sample_rows(starts: np.ndarray, window_length: int) -> np.ndarray:
    """The store rows of the samples at ``starts``: the rows, or each window's steps (n, L)."""
    return starts if not window_length else window_rows(starts, window_length)


def cache_decision(nbytes: int, device: torch.device) -> tuple[bool, str]:
    """Whether a split of ``nbytes`` is kept on ``device`` after its first epoch, and why."""
    size = f"{nbytes / 2**20:,.0f} MiB"
    if device.type != "cuda":
        return False, f"streamed to {device} each epoch (a device cache is kept on GPUs)"
    free = torch.cuda.mem_get_info(device)[0]
    share = f"{DEVICE_CACHE_SHARE:.0%} of its {free / 2**30:,.1f} GiB free"
    if nbytes <= DEVICE_CACHE_SHARE * free:
        return (
            True,
            f"the training split ({size}) stays on {device} after the first epoch ({share})",
        )
    return False, f"streamed to {device} each epoch: the training split ({size}) exceeds {share}"


class DeviceWindows:
    """Windows of whole blocks copied to ``device`` into two buffers used in turn.

    On a GPU each copy runs on a stream of its own from a pinned host buffer: it waits only
    until the device is done with the window that used its buffer before, and the compute
    stream waits for it before the first batch of its window is cut.
    """

    def __init__(
        self, device: torch.device, capacity: int, sample_shape: tuple, dtype: np.dtype
    ) -> None:
        self.device = device
        shape = (capacity, *sample_shape)
        kind = torch_dtype(dtype)
        self._buffers = [torch.empty(shape, dtype=kind, device=device) for _ in range(2)]
        self.cuda = device.type == "cuda"
        if self.cuda:
            self._stream = torch.cuda.Stream(device)
            self._copied = [torch.cuda.Event(), torch.cuda.Event()]
            self._released = [torch.cuda.Event(), torch.cuda.Event()]

    def put(self, window: Window, rows: int, turn: int) -> torch.Tensor:
        """Start copying the first ``rows`` of ``window``'s buffer (read already) into the
        device buffer of ``turn`` (0 or 1, alternating as the reader's host buffers do);
        return that device buffer."""
        out = self._buffers[turn][:rows]
        source = window.pinned if window.pinned is not None else torch.from_numpy(window.buffer)
        if not self.cuda:
            out.copy_(source[:rows])
            return out
        self._stream.wait_event(self._released[turn])  # no-op before its first record
        with torch.cuda.stream(self._stream):
            out.copy_(source[:rows], non_blocking=True)
        self._copied[turn].record(self._stream)
        torch.cuda.current_stream(self.device).wait_event(self._copied[turn])
        return out

    def copied(self, turn: int) -> None:
        """Wait on the host until the copy of ``turn`` is done: its host buffer may then be
        read into again."""
        if self.cuda:
            self._copied[turn].synchronize()

    def release(self, turn: int) -> None:
        """The batches of the window in ``turn``'s buffer are all cut (on the compute stream)."""
        if self.cuda:
            self._released[turn].record(torch.cuda.current_stream(self.device))


class DeviceCache:
    """A split's store rows (``rows``, sorted and distinct) held on ``device`` between epochs.

    Filled by the batches of an epoch as they are served (:meth:`put`), or in order when no
    whole epoch is served in this process (a resumed epoch, one rank of several); complete
    once every row is there.
    """

    def __init__(
        self, rows: np.ndarray, sample_shape: tuple, dtype: np.dtype, device: torch.device
    ) -> None:
        self.rows = rows
        self.device = device
        self.x = torch.empty((len(rows), *sample_shape), dtype=torch_dtype(dtype), device=device)
        self.complete = False

    def _positions(self, rows: np.ndarray) -> torch.Tensor:
        at = np.searchsorted(self.rows, rows.reshape(-1))
        return torch.from_numpy(at).to(self.device, non_blocking=True)

    def filled_by(
        self, served: Iterator[torch.Tensor], rows: Iterator[np.ndarray]
    ) -> Iterator[torch.Tensor]:
        """``served``'s batches, each kept as it passes (``rows``: each one's store rows); the
        cache is complete once the last one has."""
        for batch_rows, batch in zip(rows, served, strict=True):
            self.put(batch_rows, batch)
            yield batch
        self.complete = True

    def put(self, rows: np.ndarray, batch: torch.Tensor) -> None:
        """Keep ``batch``, the samples whose store rows are ``rows`` (see :func:`sample_rows`)."""
        self.x[self._positions(rows)] = batch.reshape(rows.size, *self.x.shape[1:])

    def take(self, rows: np.ndarray) -> torch.Tensor:
        """The samples whose store rows are ``rows``: (n, *sample) or windows (n, L, ...)."""
        return self.x[self._positions(rows)].reshape(*rows.shape, *self.x.shape[1:])
