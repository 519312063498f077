"""What a person watching training sees: a bar on a terminal, periodic lines elsewhere."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from aekit.errors import AekitError
from aekit.training.callbacks import Callback, TrainingState


class Progress(Callback):
    """Loss, throughput and time left.

    Parameters
    ----------
    mode : {'auto', 'bar', 'lines', 'none'}
        ``auto`` draws a bar when stderr is a terminal and prints plain lines otherwise (logs of
        batch jobs stay readable).
    every_seconds : float
        Interval between plain lines within an epoch.
    """

    def __init__(self, mode: str = "auto", every_seconds: float = 30.0) -> None:
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        self.mode = mode
        self.every_seconds = every_seconds
        self._bar: Any = None

    def on_epoch_begin(self, state: TrainingState) -> None:
        self._started = time.perf_counter()
        self._last_line = self._started
        self._first_batch = state.batch
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(
                total=state.steps_per_epoch,
                initial=state.batch,
                unit="batch",
                desc=f"epoch {state.epoch + 1}/{state.epochs}",
                leave=False,
                mininterval=0.5,
            )

    def on_batch_end(self, state: TrainingState) -> None:
        if self._bar is not None:
            self._bar.update(1)
            if state.batch % 20 == 0:
                self._bar.set_postfix(
                    loss=f"{state.loss_sum / max(state.sample_count, 1):.4g}", refresh=False
                )
        elif self.mode == "lines":
            now = time.perf_counter()
            if now - self._last_line >= self.every_seconds:
                self._last_line = now
                done = state.batch - self._first_batch
                rate = done / (now - self._started)
                left = (state.steps_per_epoch - state.batch) / rate if rate > 0 else float("nan")
                loss = state.loss_sum / max(state.sample_count, 1)
                print(
                    f"epoch {state.epoch + 1}/{state.epochs} batch {state.batch}/"
                    f"{state.steps_per_epoch} loss {loss:.4g} {rate:.1f} batch/s, "
                    f"epoch ends in {left:.0f} s",
                    flush=True,
                )

    def on_validation(self, state: TrainingState, logs: dict[str, float]) -> None:
        if self.mode != "none":
            self._write(f"step {state.step}: val_loss {logs['val_loss']:.4g}")

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.mode == "none":
            return
        parts = [
            f"epoch {int(logs['epoch'])}/{state.epochs}",
            f"train_loss {logs['train_loss']:.4g}",
        ]
        if "val_loss" in logs:
            parts.append(f"val_loss {logs['val_loss']:.4g}")
        parts += [f"lr {logs['lr']:.3g}", f"{logs['samples_per_s']:,.0f} samples/s"]
        epochs_left = state.epochs - int(logs["epoch"])
        parts.append(f"~{epochs_left * logs['seconds']:.0f} s left")
        self._write("  ".join(parts))

    def on_train_end(self, state: TrainingState) -> None:
        if self._bar is not None:
            self._bar.close()

    def _write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line)
        else:
            print(line, flush=True)


class TensorBoard(Callback):
    """Scalars of each epoch as TensorBoard event files under ``log_dir``."""

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise AekitError(
                "log.tensorboard needs the tensorboard package: pip install tensorboard."
            ) from exc
        self.writer = SummaryWriter(str(log_dir))

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        for key in ("train_loss", "val_loss", "lr", "samples_per_s"):
            if key in logs:
                self.writer.add_scalar(key, logs[key], int(logs["epoch"]))
        self.writer.flush()

    def on_train_end(self, state: TrainingState) -> None:
        self.writer.close()
