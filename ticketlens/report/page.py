"""The report's page: one HTML file that draws its figures offline.

plotly.js is embedded once, gzip-compressed and base64-encoded: the cartesian bundle vendored
in ``report/vendor`` (scatter, bar, heatmap: 1.5 MB, 0.66 MB as embedded) when its version is
the one plotly.py ships, else plotly.py's full bundle (4.8 MB, 2.0 MB as embedded). A short
script unpacks it in the browser (``DecompressionStream``: Chrome 80, Firefox 113, Safari 16.4
or later), then draws every figure from its JSON. Nothing is fetched from the network. The
output is byte-identical for the same input (gzip's timestamp is 0).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from functools import lru_cache
from pathlib import Path

import plotly.graph_objects as go

VENDORED = Path(__file__).with_name("vendor") / "plotly-cartesian.min.js.gz"

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
figure{margin:0 0 28px}figcaption{font-size:13px;color:#444;max-width:900px;margin:2px 0 0 8px;
line-height:1.45}figcaption b{color:#222}
.intro{max-width:900px;line-height:1.5}.intro dt{font-weight:600;margin-top:6px}
.intro dd{margin:0 0 0 16px}.note{font-size:13px;color:#444;max-width:900px}
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


def figure_html(fig: go.Figure, div_id: str, caption: str) -> str:
    """A figure's place on the page, its JSON (drawn by the loader once plotly.js runs) and
    its caption (HTML, already escaped). plotly's JSON escapes ``<``, ``>`` and ``/``, so no
    string in it can close the script."""
    height = fig.layout.height
    style = f"height:{height}px;width:100%" if height else "height:100%;width:100%"
    return (f'<figure><div id="{div_id}" class="plotly-graph-div" style="{style}"></div>'
            f'<script type="application/json" data-figure="{div_id}">{fig.to_json()}</script>'
            f"<figcaption>{caption}</figcaption></figure>")


def _version(source: str) -> str | None:
    m = re.search(r"plotly\.js(?: \([a-z -]+\))? v(\d+\.\d+\.\d+)", source[:400])
    return m.group(1) if m else None


@lru_cache(maxsize=1)
def _plotly_js() -> tuple[str, str]:
    """(plotly.js's own licence header, the library gzip-compressed in base64): the vendored
    cartesian bundle when it is the version plotly.py ships, else plotly.py's full bundle."""
    from plotly.offline import get_plotlyjs

    full = get_plotlyjs()
    packed = VENDORED.read_bytes() if VENDORED.exists() else b""
    source = gzip.decompress(packed).decode("utf-8") if packed else ""
    if not source or _version(source) != _version(full):
        source = full
        packed = gzip.compress(full.encode("utf-8"), compresslevel=9, mtime=0)
    header = re.match(r"\s*/\*.*?\*/", source, re.S)
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
