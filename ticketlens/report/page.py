"""The report's page: one HTML file that draws its figures offline.

plotly.js (4.8 MB as shipped with plotly.py) is embedded gzip-compressed and base64-encoded
(2.0 MB); a short script unpacks it in the browser (``DecompressionStream``: Chrome 80,
Firefox 113, Safari 16.4 or later), then draws every figure from its JSON. Nothing is fetched
from the network. The output is byte-identical for the same input (gzip's timestamp is 0).
"""

from __future__ import annotations

import base64
import gzip
import json
import re

import plotly.graph_objects as go

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222}
header{position:sticky;top:0;background:#1b2a41;color:#fff;padding:10px 24px;z-index:10}
header a{color:#cfe3ff;margin-right:16px;text-decoration:none;font-size:14px}
header b{margin-right:24px}
main{max-width:1200px;margin:0 auto;padding:12px 24px}
table{border-collapse:collapse;font-size:13px;margin:8px 0 16px}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f8}
.win{color:#1a7f37;font-weight:600}.lose{color:#b42318;font-weight:600}
.unsure{color:#9a6700;font-weight:600}
details{margin:8px 0 24px}section{margin-bottom:32px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}
@media (max-width:900px){.grid{grid-template-columns:1fr}}
"""

CONFIG = {"displaylogo": False, "responsive": True}

# Unpack plotly.js, run it, draw each figure; on failure say why in place of the figures.
LOADER = """
(async () => {
  const specs = document.querySelectorAll("script[data-figure]");
  try {
    if (typeof DecompressionStream === "undefined") {
      throw new Error("this browser cannot unpack the embedded plotly.js " +
                      "(Chrome 80, Firefox 113, Safari 16.4 or later can)");
    }
    const packed = atob(document.getElementById("plotlyjs-gzip").textContent);
    const bytes = Uint8Array.from(packed, (c) => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    const lib = document.createElement("script");
    lib.textContent = await new Response(stream).text();
    document.head.appendChild(lib);
    for (const spec of specs) {
      const fig = JSON.parse(spec.textContent);
      await Plotly.newPlot(spec.dataset.figure, fig.data, fig.layout, __CONFIG__);
    }
  } catch (err) {
    for (const spec of specs) {
      const div = document.getElementById(spec.dataset.figure);
      if (!div.hasChildNodes()) div.textContent = "Figure not drawn: " + err.message;
    }
    console.error(err);
  }
})();
"""


def figure_html(fig: go.Figure, div_id: str) -> str:
    """A figure's place on the page and its JSON (drawn by the loader once plotly.js runs).
    plotly's JSON escapes ``<``, ``>`` and ``/``, so no string in it can close the script."""
    height = fig.layout.height
    style = f"height:{height}px;width:100%" if height else "height:100%;width:100%"
    return (f'<div id="{div_id}" class="plotly-graph-div" style="{style}"></div>'
            f'<script type="application/json" data-figure="{div_id}">{fig.to_json()}</script>')


def _plotly_js() -> tuple[str, str]:
    """(plotly.js's own licence header, the whole library gzip-compressed in base64)."""
    from plotly.offline import get_plotlyjs

    source = get_plotlyjs()
    header = re.match(r"\s*/\*.*?\*/", source, re.S)
    packed = gzip.compress(source.encode("utf-8"), compresslevel=9, mtime=0)
    return (header.group(0).strip() if header else ""), base64.b64encode(packed).decode("ascii")


def page(title: str, header: str, body: str) -> str:
    """The whole HTML document: ``header`` and ``body`` are HTML, already escaped."""
    licence, packed = _plotly_js()
    loader = LOADER.replace("__CONFIG__", json.dumps(CONFIG))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{title}</title><style>{CSS}</style></head><body>"
            f"<header>{header}</header><main>{body}</main>"
            f'<script type="application/octet-stream" id="plotlyjs-gzip">{packed}</script>'
            f"<script type='text/javascript'>\n{licence}\n{loader}</script>"
            "</body></html>\n")
