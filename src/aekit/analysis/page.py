"""The HTML page of a report: sections of headings, tables, paragraphs and figures, rendered
to one self-contained file (every figure a PNG data URI; nothing loads from elsewhere)."""

from __future__ import annotations

import base64
import html
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Page:
    title: str
    sections: list[str] = field(default_factory=list)

    def add(self, heading: str, *parts: str) -> None:
        self.sections.append(f"<section><h2>{html.escape(heading)}</h2>{''.join(parts)}</section>")

    def render(self) -> str:
        body = "\n".join(self.sections)
        return (
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{CSS}</style></head>"
            f"<body><h1>{html.escape(self.title)}</h1>\n{body}\n"
            f"<footer>written by aekit on {time.strftime('%Y-%m-%d %H:%M')}</footer>"
            "</body></html>\n"
        )


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "color:#222}h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px solid #ccc;"
    "padding-bottom:.2em;margin-top:2em}table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}th{background:#f4f4f4}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%;display:block;"
    "margin:.5em 0}.verdict{font-weight:bold}p.note{color:#555;font-size:.9em}"
    "footer{margin-top:3em;color:#888;font-size:.8em}"
)


def figure(display: Any, alt: str) -> str:
    buffer = io.BytesIO()
    display.plot().figure_.savefig(buffer, format="png", dpi=90)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...] | None = None) -> str:
    def cell(value: str, tag: str) -> str:
        numeric = value.replace(".", "", 1).replace("-", "", 1).replace(" %", "").isdigit()
        css = " class='num'" if numeric and tag == "td" else ""
        return f"<{tag}{css}>{html.escape(value)}</{tag}>"

    head = "<tr>" + "".join(cell(h, "th") for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(cell(v, "td") for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def paragraph(text: str, css: str = "") -> str:
    return f"<p{f' class={css!r}' if css else ''}>{html.escape(text)}</p>"
