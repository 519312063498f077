"""The benchmarks page's generated part: one table per committed result file.

Every ``python -m bench NAME`` run writes ``bench/results/NAME-DATE.json``; a run whose figure
is quoted is committed. This module turns the newest file of each bench and mode (``--dev``,
``--series``, ...) into a table of its figures, with the command, commit, date and machine the
file records, so that a figure on the page can always be traced to its run. Called by
``docs/conf.py`` before each build.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAX_ROWS = 40  # a table longer than this is cut (the file holds all of it)


MODES = ("--dev", "--series", "--block", "--cold", "--orders-only", "--apply-only")
"""Flags that make a bench measure something else: each mode's newest run is kept apart."""


def newest_runs(results: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    """The newest result file of each bench and mode ("stream", "stream --series"), read."""
    newest: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path in sorted(results.glob("*.json")):  # names sort by date within a bench
        record = json.loads(path.read_text())
        command = str(record.get("run", {}).get("command", "")).split()
        modes = sorted(f for f in command if f in MODES)
        # The model kinds a run measured make a mode too (MNIST's dense and conv runs)
        if "--kinds" in command[:-1]:
            modes.append(f"--kinds {command[command.index('--kinds') + 1]}")
        newest[" ".join([path.stem.rsplit("-", 2)[0], *modes])] = (path, record)
    return newest


def write_results_page(results: Path, out: Path) -> None:
    parts = []
    for bench, (path, record) in sorted(newest_runs(results).items()):
        parts.append(_section(bench, path, dict(record)))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts) or "No result file is committed yet.\n")


def plot_odds(results: Path, out: Path) -> bool:
    """The newest ``odds`` run as a picture: each set's mean ROC-AUC per detector, both
    protocols side by side; False where no such run is committed."""
    runs = newest_runs(results)
    if "odds" not in runs:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = runs["odds"][1]["rows"]  # the test parts, not a --dev run
    sets = sorted({r["set"] for r in rows}, reverse=True)
    detectors = list(dict.fromkeys(r["detector"] for r in rows))
    protocols = ("unsupervised", "novelty")
    figure, axes = plt.subplots(1, 2, figsize=(10, 1.5 + 0.28 * len(sets)), sharey=True)
    for axis, protocol in zip(axes, protocols, strict=True):
        for k, detector in enumerate(detectors):
            means = []
            for name in sets:
                found = [
                    r["roc_auc"] for r in rows
                    if r["set"] == name and r["protocol"] == protocol and r["detector"] == detector
                ]  # fmt: skip
                means.append(sum(found) / len(found))
            marker = "o" if detector == "aekit" else "x"
            size = 60 if detector == "aekit" else 30
            axis.scatter(
                means, range(len(sets)), marker=marker, s=size, label=detector, zorder=3 - k
            )
        axis.set_title(f"{protocol} (mean ROC-AUC of 5 seeds)")
        axis.set_xlim(0.3, 1.01)
        axis.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(sets)), sets)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(detectors), fontsize=9)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return True


def _section(bench: str, path: Path, record: dict[str, Any]) -> str:
    run = record.pop("run", None)
    lines = [f"### `{bench}`", ""]
    if run:
        machine = run.get("machine", {})
        gpu = machine.get("gpu") or "no GPU"
        lines += [
            f"`{run.get('command')}`, commit {run.get('commit')}, {run.get('date')}; "
            f"{machine.get('cpus')} CPUs, {machine.get('memory_gb')} GB, {gpu}, torch "
            f"{machine.get('torch')}; {run.get('seconds')} s.",
            "",
        ]
    else:
        lines += ["Written before result files recorded their command and machine "
                  "(the project's 2-core CPU machine).", ""]  # fmt: skip
    lines += [f"From `bench/results/{path.name}`:", ""]
    # Lists of records (one per case, seed or size) read best as tables of their own
    tables = {k: v for k, v in record.items() if _records(v)}
    rows = list(_flatten({k: v for k, v in record.items() if k not in tables}))
    if rows:
        lines += ["| figure | value |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in rows[:MAX_ROWS]]
        if len(rows) > MAX_ROWS:
            lines.append(f"| ... | {len(rows) - MAX_ROWS} more in the file |")
        lines.append("")
    for key, table in tables.items():
        columns = list(dict.fromkeys(c for row in table for c in row))
        lines += [f"`{key}`:", "", "| " + " | ".join(columns) + " |"]
        lines.append("|" + "---|" * len(columns))
        for row in table[:MAX_ROWS]:
            cells = [_cell(row.get(c, "")) for c in columns]
            lines.append("| " + " | ".join(cells) + " |")
        if len(table) > MAX_ROWS:
            lines.append(f"| {len(table) - MAX_ROWS} more rows in the file |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _cell(value: Any) -> str:
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, (dict, list)):
        return f"`{json.dumps(value)[:60]}`"
    return str(value)


def _flatten(value: Any, prefix: str = "") -> Any:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif (
        isinstance(value, list)
        and len(value) <= 12
        and all(isinstance(v, (int, float)) for v in value)
    ):
        yield prefix, ", ".join(_number(v) for v in value)
    elif isinstance(value, list):
        for i, inner in enumerate(value[:12]):
            yield from _flatten(inner, f"{prefix}[{i}]")
    else:
        yield prefix, _number(value) if isinstance(value, (int, float)) else f"`{value}`"


def _number(value: float) -> str:
    if isinstance(value, bool) or isinstance(value, int):
        return f"{value:,}" if not isinstance(value, bool) else str(value)
    return f"{value:,.4g}"
