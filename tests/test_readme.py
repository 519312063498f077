from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.s3server import BUCKET, S3Server, _free_port

README = Path(__file__).resolve().parents[1] / "README.md"
DOCS = README.parent / "docs"


def _guide() -> list[Path]:
    """The user guide's pages in the order of the site's table of contents."""
    index = (DOCS / "index.md").read_text()
    return [DOCS / f"{name}.md" for name in re.findall(r"^(guide/[a-z-]+)$", index, re.M)]


def _blocks(language: str, documents: list[Path]) -> list[str]:
    return [
        block
        for document in documents
        for block in re.findall(rf"```{language}\n(.*?)```", document.read_text(), re.S)
    ]


def test_readme_leads_with_the_two_commands():
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make demo", "make test"]


def test_readme_python_examples_run_in_order(tmp_path, monkeypatch):
    blocks = _blocks("python", [README])
    assert len(blocks) >= 1
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["Z"].shape == (178, 3)
    assert namespace["X_hat"].shape == (178, 13)
    assert namespace["s"].shape == (178,)
    assert namespace["ae"].n_features_in_ == 13


def test_the_guides_python_examples_run_in_order(tmp_path, monkeypatch):
    pages = _guide()
    assert [p.stem for p in pages][:3] == ["getting-started", "data", "models"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    namespace: dict = {}
    for page in pages:
        for block in _blocks("python", [page]):
            exec(compile(block, str(page), "exec"), namespace)
    assert namespace["store"].n == 178 and (tmp_path / "data" / "x.zarr" / "zarr.json").exists()
    assert namespace["mine"].transform(namespace["rows"]).shape == (500, 4)  # your own network


def test_ci_calls_the_readme_test_command():
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci


# ---------------------------------------------------------------------------------------------
# Every bash block, run as written


def _bash_blocks() -> list[str]:
    """The README's bash blocks, then the guide's, in the order a reader meets them."""
    return _blocks("bash", [README, *_guide()])


def _commands(block: str) -> list[str]:
    """The block's commands, continuation lines joined, comments and blank lines left out."""
    joined = block.replace("\\\n", " ")
    return [line for line in joined.splitlines() if line.split("#")[0].strip()]


def _is_synopsis(block: str) -> bool:
    return block.startswith("aekit --help")


def test_every_flag_of_the_readme_synopsis_is_one_the_command_takes():
    from aekit.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    synopsis = next(block for block in _bash_blocks() if _is_synopsis(block))
    seen = set()
    for line in _commands(synopsis)[1:]:
        words = line.split("#")[0].split()
        if words[0] == "aekit":
            names = words[1].split("|")
        flags = set(re.findall(r"(--[a-z][a-z-]*)", line.split("#")[0]))
        for name in names:
            known = {o for a in commands.choices[name]._actions for o in a.option_strings}
            assert flags <= known, f"README synopsis of 'aekit {name}': {flags - known} unknown"
            seen.add(name)
    assert seen == set(commands.choices), (
        f"commands missing from the synopsis: {set(commands.choices) - seen}"
    )


# Sizes the test makes smaller, and the places only a user has (their S3 server, their nodes,
# their scratch disk). Each must still be found in the README, so that an edit there cannot
# silently turn a substitution off.
SMALLER = [
    ("--epochs 50", "--epochs 2"),
    ("train.epochs=50", "train.epochs=2"),
    ("--nproc-per-node 4", "--nproc-per-node 2"),
    ("--nproc-per-node 8", "--nproc-per-node 1"),
]


def _places(tmp_path: Path, server) -> list[tuple[str, str]]:
    return [
        ("AWS_ACCESS_KEY_ID=...", f"AWS_ACCESS_KEY_ID={server.env['AWS_ACCESS_KEY_ID']}"),
        (
            "AWS_SECRET_ACCESS_KEY=...",
            f"AWS_SECRET_ACCESS_KEY={server.env['AWS_SECRET_ACCESS_KEY']}",
        ),
        ("AWS_REGION=eu-west-1", f"AWS_REGION={server.env['AWS_REGION']}"),
        ("http://127.0.0.1:8333", server.endpoint),
        ("s3://my-bucket/", f"s3://{BUCKET}/"),
        ("/scratch/aekit", str(tmp_path / "scratch")),
        ("HOST:29500", f"127.0.0.1:{_free_port()}"),
        (" /shared/", f" {tmp_path / 'shared'}/"),
    ]


def _as_run_here(command: str) -> str:
    """``command`` as the test runs it: a training run is cut to 2 epochs, and the line that
    says to run it on every node runs on two local "nodes" at once."""
    trains = "aekit train" in command and "--out" in command
    if trains and not re.search(r"--epochs|train\.epochs|--resume|--find-lr", command):
        command = command.split("#")[0].rstrip() + " --epochs 2"
    if "--nnodes 2" in command:
        command = f"( {command} ) & node=$!; {command}; wait $node"
    return command


@pytest.mark.slow
def test_every_readme_command_runs_in_order_in_an_empty_folder(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for folder in ("examples", "configs"):  # what a clone of the repository holds
        shutil.copytree(README.parent / folder, work / folder)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(work / "data")
    server = S3Server(tmp_path / "s3")
    server.start()
    try:
        replacements = SMALLER + _places(tmp_path, server)
        text = "\n".join(_bash_blocks())
        for old, _ in replacements:
            assert old in text, f"the README no longer has {old!r}; update the test's list"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OMP_"))}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        env["HOME"] = str(tmp_path)
        for block in _bash_blocks()[1:]:  # the first, `make demo` and `make test`, is this suite
            if _is_synopsis(block):
                continue
            for old, new in replacements:
                block = block.replace(old, new)
            script = "\n".join(_as_run_here(command) for command in _commands(block))
            done = subprocess.run(
                ["bash", "-euxo", "pipefail", "-c", script], cwd=work, env=env,
                capture_output=True, text=True, timeout=900,
            )  # fmt: skip
            assert done.returncode == 0, (
                f"README or guide block failed:\n{script}\n---\n{done.stderr[-4000:]}"
            )
    finally:
        server.stop()
    for made in ["data/photos.zarr", "runs/table/model.safetensors", "codes.parquet",
                 "digits.aek", "decoded.npy", "deploy/table/encoder.onnx", "digits-500.html",
                 "runs/digits/report.html", "shared/runs/big/model.safetensors"]:  # fmt: skip
        assert (work / made).exists() or (tmp_path / made).exists(), made
