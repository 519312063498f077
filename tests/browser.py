"""Headless Chromium (Debian's package) for checking HTML pages: installed when missing."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Nothing can leave the machine, whatever the page asks for (the net log still shows it)
    "--host-resolver-rules=MAP * ~NOTFOUND",
]

# Appended to a copy of the page: records, once everything has loaded, how many images there are
# and how many failed to load.
_PROBE = (
    "<script>window.addEventListener('load',()=>{const i=[...document.images];"
    "document.body.dataset.images=i.length;document.body.dataset.broken="
    "i.filter(x=>!(x.complete&&x.naturalWidth>0)).length;});</script>"
)


def chromium() -> str:
    """The Chromium executable, installed from Debian's packages when missing."""
    found = shutil.which("chromium")
    if found is None:
        install = ["apt-get", "install", "-y", "-q", "chromium"]
        if subprocess.run(install, capture_output=True, check=False).returncode != 0:
            # A fresh machine may have no package lists yet
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=True)
            subprocess.run(install, capture_output=True, check=True)
        found = shutil.which("chromium")
    if found is None:
        raise RuntimeError("could not install chromium (apt-get install chromium)")
    return found


@dataclass
class PageCheck:
    images: int
    broken_images: int
    remote_requests: list[str]  # URLs the page asked for that are not file: or data:
    screenshot: Path


def check_page(page: Path, screenshot: Path, *, height: int = 8000) -> PageCheck:
    """Open ``page`` in headless Chromium: count its images and the broken ones, list the
    requests it made beyond the file itself, and save a screenshot."""
    exe = chromium()
    # The probed copy sits beside the page, so that what the page links to relatively (a
    # site's images and styles) loads as it does for the page itself
    probe = page.with_name(f".probe-{page.name}")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"))
    try:
        return _check(exe, page, probe, screenshot, height)
    finally:
        probe.unlink(missing_ok=True)


def _check(exe: str, page: Path, probe: Path, screenshot: Path, height: int) -> PageCheck:
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        netlog = work_dir / "netlog.json"
        dom = subprocess.run(
            [exe, *FLAGS, f"--user-data-dir={work_dir / 'profile-1'}",
             "--virtual-time-budget=10000", f"--log-net-log={netlog}", "--dump-dom",
             probe.as_uri()],
            check=True, capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
        subprocess.run(
            [exe, *FLAGS, f"--user-data-dir={work_dir / 'profile-2'}",
             f"--window-size=1200,{height}", f"--screenshot={screenshot}", page.as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        events = json.loads(netlog.read_text())["events"]
    remote = sorted({
        e["params"]["url"] for e in events
        if "initiator" in e.get("params", {})
        # Chromium's own background requests have no origin; the page's have the file's
        and e["params"]["initiator"] != "not an origin"
        and not e["params"]["url"].startswith(("file:", "data:"))
    })  # fmt: skip
    import re

    def attribute(name: str) -> int:
        match = re.search(rf'data-{name}="(\d+)"', dom)
        return int(match.group(1)) if match else -1

    return PageCheck(attribute("images"), attribute("broken"), remote, screenshot)
