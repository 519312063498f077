"""The documentation site builds with warnings as errors, every internal link in it resolves,
and its pages render in a real browser while loading nothing from the network."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.browser import check_page

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS),
         str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0 and not built.stderr.strip(), built.stderr
    return out


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag in ("a", "link", "script", "img"):
            target = found.get("href") or found.get("src")
            if target:
                self.hrefs.append(target)


def _parse(page: Path) -> _Links:
    links = _Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def test_every_page_of_the_guide_is_built_with_the_reference_pages(site):
    for name in ["index", "api", "benchmarks", "studies", "architecture"]:
        assert (site / f"{name}.html").is_file(), name
    guide = re.findall(r"^guide/([a-z-]+)$", (DOCS / "index.md").read_text(), re.M)
    assert len(guide) >= 7
    for name in guide:
        assert (site / "guide" / f"{name}.html").is_file(), name
    api = (site / "api.html").read_text()
    for documented in [
        "aekit.Autoencoder",
        "aekit.ingest",
        "aekit.load",
        "aekit.models.Architecture",
    ]:
        assert f'id="{documented}"' in api, documented


def test_every_internal_link_and_anchor_resolves(site):
    pages = {p: _parse(p) for p in site.rglob("*.html")}
    broken = []
    for page, links in pages.items():
        for href in links.hrefs:
            if re.match(r"^[a-z]+:", href):  # http:, mailto:, data: (none is expected: below)
                continue
            parts = urlsplit(href)
            path, anchor = parts.path, parts.fragment
            target = (page.parent / unquote(path)).resolve() if path else page
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {href}")
            elif anchor and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if anchor not in ids:
                    broken.append(f"{page.relative_to(site)}: {href} (no such anchor)")
    assert not broken, broken


@pytest.mark.parametrize("page", ["index.html", "guide/models.html", "api.html", "benchmarks.html"])
def test_a_page_renders_and_loads_nothing_from_the_network(site, page, tmp_path):
    checked = check_page(site / page, tmp_path / "page.png", height=2000)
    assert checked.remote_requests == [], checked.remote_requests
    assert checked.broken_images == 0
    assert checked.screenshot.stat().st_size > 10_000  # drawn, not a blank page


def test_the_readme_headline_table_is_the_one_made_from_the_committed_results():
    sys.path.insert(0, str(DOCS))
    try:
        import headline
    finally:
        sys.path.remove(str(DOCS))
    readme = (DOCS.parent / "README.md").read_text()
    made = headline.table()
    assert headline.with_table(readme, made) == readme, "run: python docs/headline.py"
    # every measured row found its file: none left out
    assert made.count("\n| ") == len(headline.ROWS) + len(headline.BY_HAND)
