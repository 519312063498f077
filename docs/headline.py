"""The README's table of headline figures, made from the committed result files.

Each row reads the newest ``bench/results/`` file of its bench (and mode), so that a figure in
the README can always be traced to its run; the few that cannot be measured here (a GPU, a
store larger than this machine's memory, a study not yet re-run) are marked as quoted by hand,
with their date and machine. ``python docs/headline.py`` rewrites the table between the
README's markers; a test checks that the README holds what this module makes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from results import newest_runs

ROOT = Path(__file__).resolve().parents[1]
START = "<!-- headline table: made by docs/headline.py from bench/results; do not edit -->"
END = "<!-- end of headline table -->"
HEADER = "| task | aekit | instead | figure |\n|---|---|---|---|"
HAND = "quoted by hand"


@dataclass
class Row:
    task: str
    bench: str  # the result file's bench, with its mode flags: "odds", "smap", "stream --series"
    cells: Callable[[dict[str, Any]], tuple[str, str, str]]  # aekit, instead, figure


def newest(results: Path, bench: str) -> dict[str, Any]:
    """The newest result file of ``bench`` ("NAME [--mode ...]", modes sorted), read."""
    runs = newest_runs(results)
    if bench not in runs:
        raise FileNotFoundError(f"no committed result of `python -m bench {bench}`")
    return runs[bench][1]


def _odds(protocol: str) -> Callable[[dict[str, Any]], tuple[str, str, str]]:
    def cells(r: dict[str, Any]) -> tuple[str, str, str]:
        auc = r["summary"][protocol]["roc_auc"]
        others = {"IForest": "IForest", "ECOD": "ECOD", "PCA": "PCA",
                  "AutoEncoder": "PyOD AutoEncoder"}  # fmt: skip
        instead = ", ".join(f"{label} {auc[k]:.3f}" for k, label in others.items())
        best = max(others, key=lambda k: auc[k])
        gap = auc["aekit"] - auc[best]
        if gap > 0.005:
            figure = "best mean"
        elif gap >= 0:
            figure = f"level with {others[best]} (+{gap:.3f})"
        else:
            figure = f"{-gap:.3f} behind {others[best]}"
        far = r["summary"][protocol].get("behind_0.1")
        if far:  # how often each is far behind the best other detector on a set
            figure += (
                f"; more than 0.1 below the best other on {len(far['aekit'])} sets "
                f"(IForest {len(far['IForest'])}, PCA {len(far['PCA'])})"
            )
        return f"{auc['aekit']:.3f}", instead, figure

    return cells


def _smap(r: dict[str, Any]) -> tuple[str, str, str]:
    s = r["summary"]["all"]
    names = {"pca": "PCA on the same windows", "iforest": "IForest", "raw": "raw value"}
    instead = ", ".join(f"{label} {s[k]['auc_pr']:.3f}" for k, label in names.items() if k in s)
    return f"{s['aekit']['auc_pr']:.3f}", instead, f"{s['entities']} entities"


def _mnist(kind: str) -> Callable[[dict[str, Any]], tuple[str, str, str]]:
    def cells(r: dict[str, Any]) -> tuple[str, str, str]:
        ratios = " / ".join(f"{row[f'{kind}_ratio']:.3f}" for row in r["reconstruction"])
        return ratios, "PCA of the same size", "x PCA's MSE"

    return cells


def _ratio(unit: str) -> Callable[[dict[str, Any]], tuple[str, str, str]]:
    def cells(r: dict[str, Any]) -> tuple[str, str, str]:
        rate = r["rates"].get("store", r["rates"].get("users"))
        return f"{rate / 1000:.1f}k {unit}", "", f"{r['ratio']:.3f}"

    return cells


ROWS = [
    Row("Anomalies, 28 tables (17 ODDS, 11 ADBench), with the anomalies in the training data "
        "(`odds`, mean ROC-AUC)", "odds", _odds("unsupervised")),
    Row("Anomalies, the same sets trained on their normal samples", "odds", _odds("novelty")),
    Row("Anomalies, digits and breast cancer, trained on normal samples (`anomaly`)", "anomaly",
        lambda r: (f"{r['mean_aekit']:.3f}", f"PyOD AutoEncoder {r['mean_pyod']:.3f}",
                   "same splits")),
    Row("Anomalies per time step, NASA SMAP and MSL telemetry (`smap`, mean AUC-PR)", "smap",
        _smap),
    Row("Training from a 3.1 GB store (`stream`)", "stream",
        lambda r: (_ratio("samples/s")(r)[0], "the same step on an in-memory tensor",
                   f"{r['ratio']:.3f}")),
    Row("Training on windows of a stored series (`stream --series`)", "stream --series",
        lambda r: (_ratio("windows/s")(r)[0], "the same windows from an in-memory tensor",
                   f"{r['ratio']:.3f}")),
    Row("The same windows in block order, the store kept out of the page cache "
        "(`stream --series --block --cold`)", "stream --block --cold --series",
        lambda r: (_ratio("windows/s")(r)[0], "the same windows from an in-memory tensor",
                   f"{r['ratio']:.3f}")),
    Row("Memory of `aekit train` on a 6 GB store (`memory`)", "memory",
        lambda r: (f"{r['orders']['784-128-784, global']['peak_rss_anon_mib']:.0f} MiB peak",
                   "the epochs' own peak",
                   f"{r['orders']['784-128-784, global']['after_over_epochs']:.2f}")),
    Row("Memory of `aekit train` on a series of 50M steps x 8 (`memory --series`)",
        "memory --series",
        lambda r: (f"{r['series']['peak_rss_anon_mib']:.0f} MiB peak",
                   f"the series in memory, {r['series']['series_bytes'] / 2**20:,.0f} MiB",
                   f"{r['series']['peak_rss_anon_mib'] * 2**20 / r['series']['series_bytes']:.2f}"
                   f"; the store {r['series']['store_over_series']:.3f} x the series")),
    Row("Compression of digits at no more distortion (`compress`)", "compress",
        lambda r: next((f"{row['aekit_bytes']:,} bytes", f"PCA({row['pca_k']}) coefficients "
                        "as float16", f"{row['ratio']:.3f}")
                       for row in r["rows"] if row.get("pca_k") == 16)),
    Row("MNIST reconstruction, MSE at code 2 / 16 / 32 (`mnist`, dense config)",
        "mnist --kinds dense", _mnist("dense")),
    Row("MNIST reconstruction, MSE at code 2 / 16 / 32 (`mnist`, conv config)",
        "mnist --kinds conv", _mnist("conv")),
    Row("Your own network with the built-in's layers (`user-network`)", "user-network",
        lambda r: (f"{r['rates']['users']:,.0f} samples/s", "the built-in dense family",
                   f"{r['ratio']:.3f}")),
]  # fmt: skip

# Figures not measured from a committed file: each says when, where, and why by hand
BY_HAND = [
    "| Training from a 33.6 GiB store on 24 GB of RAM (`cold`) | about 50k samples/s | the same "
    "model, a cached store | 0.987; quoted by hand (2026-12, before result files) |",
    "| Training from a store on one H200 (`gpu`, dense 784-128-784) | 787k samples/s | the "
    "model fed from GPU memory | 0.517; quoted by hand (no GPU lent since) |",
]


def table(results: Path = ROOT / "bench" / "results") -> str:
    """The headline table in Markdown: the rows measured from committed files, then those
    quoted by hand; a row whose file is missing is left out."""
    lines = [HEADER]
    for row in ROWS:
        try:
            record = newest(results, row.bench)
        except FileNotFoundError:
            continue
        aekit, instead, figure = row.cells(record)
        lines.append(f"| {row.task} | {aekit} | {instead} | {figure} |")
    return "\n".join([*lines, *BY_HAND])


def with_table(readme: str, made: str) -> str:
    """``readme`` with the text between its markers replaced by ``made``."""
    head, found, rest = readme.partition(START)
    _, end, tail = rest.partition(END)
    if not (found and end):
        raise ValueError(f"README.md lacks the markers {START!r} and {END!r}")
    return f"{head}{START}\n{made}\n{END}{tail}"


if __name__ == "__main__":
    path = ROOT / "README.md"
    path.write_text(with_table(path.read_text(), table()))
    sys.exit(0)
