"""One self-contained HTML report: figures, movies and tables embedded, nothing fetched.

The report is a single file that opens anywhere (no server, no network, no script library): PNG
figures and GIF movies are embedded as ``data:`` URIs, tables as HTML, styles inline. One small
script marks the page when every picture has decoded (``data-pictures-loaded`` on ``<body>``), so a
headless browser can check the report as a person would see it.

Build it from blocks::

    >>> from atomlens.report.html import document, key_values, section
    >>> page = document("run", [section("Input", key_values({"pixel size": "0.1 Å"}))])
    >>> page.startswith("<!DOCTYPE html>") and "0.1 Å" in page
    True
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "document",
    "figure_png",
    "key_values",
    "paragraph",
    "picture",
    "section",
    "table",
]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
figure { display: inline-block; margin: .5em 1em .5em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .85em; color: #555; max-width: 640px; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
td, th { border: 1px solid #ddd; padding: .2em .5em; text-align: right; }
th { background: #f4f4f4; } td.key { text-align: left; font-weight: 600; }
p.note { color: #8a4b00; } .small { font-size: .85em; color: #555; }
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var pictures = Array.prototype.slice.call(document.images);
  var loaded = pictures.filter(function (p) { return p.complete && p.naturalWidth > 0; });
  document.body.setAttribute("data-pictures-loaded", String(loaded.length));
  document.body.setAttribute("data-pictures", String(pictures.length));
});
"""


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """A matplotlib figure rendered to PNG bytes (Agg; pyplot untouched)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    return buffer.getvalue()


def picture(data: bytes, caption: str = "", *, kind: str = "png", alt: str = "") -> str:
    """A figure block with an embedded PNG or GIF and its caption."""
    if kind not in ("png", "gif"):
        raise ValueError(f"kind must be 'png' or 'gif', got {kind!r}.")
    encoded = base64.b64encode(data).decode("ascii")
    source = f"data:image/{kind};base64,{encoded}"
    return (
        f'<figure><img src="{source}" alt="{html.escape(alt or caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def paragraph(text: str, *, note: bool = False) -> str:
    """A paragraph of escaped text; ``note`` colours it as a warning or a limitation."""
    css = ' class="note"' if note else ""
    return f"<p{css}>{html.escape(text)}</p>"


def key_values(values: Mapping[str, object]) -> str:
    """A two-column table of names and values."""
    rows = "".join(
        f'<tr><td class="key">{html.escape(str(k))}</td><td>{html.escape(_text(v))}</td></tr>'
        for k, v in values.items()
    )
    return f"<table>{rows}</table>"


def table(frame: pd.DataFrame, *, max_rows: int = 20, caption: str = "", digits: int = 3) -> str:
    """A DataFrame as an HTML table (the first ``max_rows`` rows), with a caption."""
    shown = frame.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_text(v, digits))}</td>" for v in row) + "</tr>"
        for row in shown.itertuples(index=False)
    )
    more = f" (first {max_rows} of {len(frame)} rows)" if len(frame) > max_rows else ""
    label = f'<p class="small">{html.escape(caption + more)}</p>' if caption or more else ""
    return f"{label}<table><tr>{head}</tr>{body}</table>"


def section(heading: str, *blocks: str | Iterable[str]) -> str:
    """A titled section of blocks (strings from the functions above, or lists of them)."""
    parts = []
    for block in blocks:
        parts.extend([block] if isinstance(block, str) else list(block))
    anchor = html.escape(heading.lower().replace(" ", "-"))
    return f'<section id="{anchor}"><h2>{html.escape(heading)}</h2>{"".join(parts)}</section>'


def document(title: str, sections: Iterable[str], footer: str = "") -> str:
    """The whole HTML page."""
    foot = f'<p class="small">{html.escape(footer)}</p>' if footer else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
        f"<script>{_SCRIPT}</script></head>"
        f"<body><h1>{html.escape(title)}</h1>{''.join(sections)}{foot}</body></html>\n"
    )


def _text(value: object, digits: int = 4) -> str:
    """A cell's text: floats to ``digits`` significant figures, NaN as a dash."""
    if isinstance(value, (float, np.floating)):
        if value != value:
            return "–"
        return f"{float(value):.{digits}g}"
    return str(value)
