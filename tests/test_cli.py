from __future__ import annotations

import argparse
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aekit import __version__
from aekit.cli import build_parser, main

AEKIT = [sys.executable, "-m", "aekit"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    return subprocess.run([*AEKIT, *args], capture_output=True, text=True, env=env, timeout=300)


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "demo" in out and "env" in out


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"aekit {__version__}"


def test_every_help_prints_percent_signs_as_written():
    # argparse %-formats an option's help, not a description or an epilog: %% stays doubled there
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in [("aekit", parser), *commands.choices.items()]:
        assert "%%" not in sub.format_help(), name


HEAVY = ("torch", "sklearn", "matplotlib")


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--help"], 0),
        (["score", "--help"], 0),
        (["validate", "{config}"], 0),
        (["validate", "{config}", "--set", "train.epoch=3"], 2),
        (["train", "--latent-dim", "two"], 2),
        (["train", "--config", "{config}", "--out", "{tmp}/run", "--latent-dim", "0"], 2),
    ],
    ids=["help", "score-help", "validate", "validate-mistake", "train-flag", "train-value"],
)
def test_help_validate_and_argument_errors_import_no_heavy_library(args, code, tmp_path):
    # These answer at once: torch alone takes seconds to import on a busy machine
    config = tmp_path / "small.toml"
    config.write_text("[model]\nlatent_dim = 3\n\n[train]\nepochs = 5\n")
    argv = ["aekit", *(a.format(config=config, tmp=tmp_path) for a in args)]
    script = (
        "import json, runpy, sys\n"
        f"sys.argv = {argv!r}\n"
        "try:\n"
        "    runpy.run_module('aekit', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        f"    print(json.dumps([exc.code, [m for m in {HEAVY!r} if m in sys.modules]]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert json.loads(result.stdout.splitlines()[-1]) == [code, []], result.stderr


def test_env_reports_versions_device_and_threads(capsys):
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    for key in ("torch", "numpy", "scikit-learn", "device", "torch_threads"):
        assert key in out


def test_a_bad_flag_exits_2_with_one_line():
    result = _run("demo", "--sede", "3")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "--sede" in lines[0] and "--help" in lines[0]


def test_a_user_error_exits_2_and_an_internal_error_exits_1(monkeypatch, capsys, tmp_path):
    from aekit.errors import AekitError
    from aekit.runs import demo as demo_module

    def user_mistake(out, seed):
        raise AekitError(f"cannot write to {out}: read-only; choose another --out")

    monkeypatch.setattr(demo_module, "wine_demo", user_mistake)
    assert main(["demo", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"aekit demo: error: cannot write to {tmp_path}: read-only; choose another --out"
    ]

    def bug(out, seed):
        raise RuntimeError("boom")

    monkeypatch.setattr(demo_module, "wine_demo", bug)
    assert main(["demo", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error: RuntimeError: boom" in err[0]


def test_demo_writes_plots_and_a_summary_that_holds_its_figures(tmp_path: Path):
    out = tmp_path / "demo"
    result = _run("demo", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "KMeans ARI" in result.stdout and "PCA(3)" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    for name in summary["files"].values():
        png = out / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ae, pca = summary["autoencoder"], summary["pca"]
    assert summary["heldout_mse_ratio_autoencoder_to_pca"] == pytest.approx(
        ae["heldout_mse"] / pca["heldout_mse"]
    )
    assert ae["heldout_mse"] <= 1.05 * pca["heldout_mse"]
    assert 0.7 < ae["kmeans_ari"] <= 1 and 0.7 < pca["kmeans_ari"] <= 1
    assert not list(out.glob(".*tmp"))
    _report_agrees_with_the_console(out / "report.html", summary)


def _report_agrees_with_the_console(report: Path, summary: dict) -> None:
    """The demo's report gives the console's held-out ratio and ARIs, and Wine's names."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", report.read_text()))
    text = re.sub(r"\s+", " ", text)
    ratio = float(re.search(r"ratio (\d\.\d{3})", text).group(1))
    assert ratio == round(summary["heldout_mse_ratio_autoencoder_to_pca"], 3)
    assert "54 held-out samples" in text
    rows = re.findall(r"(autoencoder|PCA\(3\)) (\d\.\d{3}) \d\.\d{3} (\d\.\d{3})", text)
    found = {name: (float(kmeans), float(dbscan)) for name, kmeans, dbscan in rows}
    for name, key in (("autoencoder", "autoencoder"), ("PCA(3)", "pca")):
        expected = summary[key]
        assert found[name] == (round(expected["kmeans_ari"], 3), round(expected["dbscan_ari"], 3))
    worst = re.search(r"Worst: ([\w/]+) \(", text).group(1)  # named, not "feature 6"
    assert worst in summary["feature_names"]


def test_sigterm_removes_the_partial_output_and_exits_143(tmp_path):
    import signal
    import time

    import numpy as np

    np.save(tmp_path / "big.npy", np.ones((300_000, 256), np.float32))
    dest = tmp_path / "big.zarr"
    with subprocess.Popen(
        [*AEKIT, "ingest", str(tmp_path / "big.npy"), str(dest)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        deadline = time.time() + 120
        while not list(tmp_path.glob(".big.zarr.partial-*")) and time.time() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "ingest ended before the test could stop it"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "aekit ingest: terminated (SIGTERM)", err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.npy"]


def test_a_sigterm_that_lands_where_python_swallows_exceptions_still_stops(
    tmp_path, monkeypatch, capsys
):
    import gc
    import os
    import signal
    import time
    import weakref

    from aekit.runs import demo as demo_module

    ran_on = []

    def work(out, seed):
        class Thing:
            pass

        def on_collect(ref):
            # the signal's handler runs here, inside a weakref callback, where Python ignores
            # exceptions; the loop below keeps the handler's moment inside the callback
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                pass

        thing = Thing()
        keep = weakref.ref(thing, on_collect)
        del thing
        gc.collect()
        for step in range(200):  # the command goes on working, 5 ms a step
            ran_on.append(step)
            time.sleep(0.005)
        return keep

    monkeypatch.setattr(demo_module, "wine_demo", work)
    assert main(["demo", "--out", str(tmp_path / "d")]) == 143
    assert len(ran_on) < 200  # stopped at the next ordinary line, not at the end
    assert capsys.readouterr().err.strip().splitlines()[-1] == "aekit demo: terminated (SIGTERM)"
