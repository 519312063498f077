"""The benches' ``--param`` flag: values read as literals, unknown names refused before a fit."""

from __future__ import annotations

import pytest

from bench.common import parameter


def test_a_param_value_is_read_as_a_python_literal_or_kept_as_text():
    assert parameter("hidden=[64, 32]") == ("hidden", [64, 32])
    assert parameter("schedule=cosine") == ("schedule", "cosine")


def test_a_name_the_estimator_lacks_exits_2_naming_it(capsys):
    with pytest.raises(SystemExit) as stop:
        parameter("latent=8")
    assert stop.value.code == 2
    assert "'latent' is not an Autoencoder parameter" in capsys.readouterr().err


def test_bench_mnist_refuses_a_bad_param_before_reading_the_digits(monkeypatch, capsys):
    from bench import mnist

    monkeypatch.setattr(mnist, "load", lambda: pytest.fail("the digits were read"))
    with pytest.raises(SystemExit) as stop:
        mnist.main(["--param", "latent=8"])
    assert stop.value.code == 2 and capsys.readouterr().out == ""
