"""Train one epoch from a store, or run one aekit command, and print the peak anonymous memory
(RssAnon) it took.

Run by ``python -m bench memory`` in a fresh process, under ``ulimit -d`` when asked:
``python -m bench.memory_probe STORE`` trains; ``python -m bench.memory_probe -- ARGS...`` runs
``aekit ARGS...``.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import torch


def _rss_anon_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    from aekit import Autoencoder

    torch.set_num_threads(2)
    peak = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_anon_kib())
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()
    started = time.perf_counter()
    if sys.argv[1] == "--":
        import aekit.training.fitting as fitting
        from aekit.cli import main as aekit

        # The peak while the training epochs ran, apart from the whole command's
        epochs = [0]
        train = fitting.train

        def timed_train(*args: object, **kwargs: object) -> object:
            state = train(*args, **kwargs)  # type: ignore[arg-type]
            epochs[0] = max(peak[0], _rss_anon_kib())
            return state

        fitting.train = timed_train  # type: ignore[assignment]
        code = aekit(sys.argv[2:])
        done.set()
        peak_mib = max(peak[0], _rss_anon_kib()) / 1024
        seconds = time.perf_counter() - started
        result = {"peak_rss_anon_mib": peak_mib, "seconds": seconds, "exit": code}
        if epochs[0]:
            result["epochs_peak_rss_anon_mib"] = epochs[0] / 1024
        print(json.dumps(result))
        return
    ae = Autoencoder(
        latent_dim=128, hidden=(), activation="relu", epochs=1, batch_size=256, random_state=0
    ).fit(sys.argv[1])
    seconds = time.perf_counter() - started
    done.set()
    print(
        json.dumps(
            {
                "peak_rss_anon_mib": max(peak[0], _rss_anon_kib()) / 1024,
                "seconds": seconds,
                "samples_per_s": ae.history_[0]["samples_per_s"],
                "val_loss": ae.history_[0]["val_loss"],
            }
        )
    )


if __name__ == "__main__":
    main()
