"""``aekit env``: versions, device and threads, for bug reports and benchmarks."""

from __future__ import annotations

import argparse
import os
import platform

from aekit.cli.command import add_command

PACKAGES = ["aekit", "torch", "numpy", "scikit-learn", "matplotlib"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    add_command(
        sub,
        "env",
        help="print versions, device and threads",
        description="Print what aekit runs on: package versions, the compute device, threads.",
        epilog="example: aekit env",
        run=run,
    )


def describe() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import torch

    info = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            info[name] = version(name)
        except PackageNotFoundError:
            info[name] = "not installed"
    if torch.cuda.is_available():
        info["device"] = f"cuda ({torch.cuda.get_device_name(0)})"
    else:
        info["device"] = "cpu"
    info["cpu_count"] = str(os.cpu_count())
    info["torch_threads"] = str(torch.get_num_threads())
    return info


def run(args: argparse.Namespace) -> int:
    for key, value in describe().items():
        print(f"{key:<14}{value}")
    return 0
