"""The examples in the public API's docstrings run, as a reader would paste them, each module's
in a fresh folder (those that write a store or a run write it there)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "aekit.estimator", "aekit.data.ingest", "aekit.data.store",
    "aekit.data.stream", "aekit.runs.model",
    "aekit.families", "aekit.models", "aekit.models.architecture", "aekit.models.conv",
    "aekit.atomic", "aekit.params", "aekit.training.budget", "aekit.memory",
]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_in_the_docstrings_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False, report=True)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0, f"{result.failed} example(s) of {name} failed (printed above)"
