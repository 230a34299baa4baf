"""Headless Chromium for the tests and the docs' screenshots: the rendered page (its DOM after
the scripts ran) with what it wrote to the console, and screenshots. Chromium is the Debian
package ``chromium`` (``make browser``); every helper returns None when it is absent."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=20000"]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@dataclass(frozen=True)
class Rendered:
    dom: str  # the document after its scripts ran (Chromium's --dump-dom)
    console: list[str]  # every message the page wrote to the console

    def text(self) -> str:
        """What a reader sees: the DOM's text (HTML and the figures' SVG text), no scripts or
        styles, entities decoded."""
        import html

        body = re.sub(r"<(script|style|title)[^>]*>.*?</\1>", " ", self.dom, flags=re.S)
        body = re.sub(r"<details><summary>settings</summary>.*?</details>", " ", body,
                      flags=re.S)  # collapsed: option names and paths as they are
        body = re.sub(r"<code>.*?</code>", " ", body)  # code set as code: names meant
        return html.unescape(re.sub(r"<[^>]+>", " ", body))


def render(path: Path) -> Rendered | None:
    browser = chromium()
    if browser is None:
        return None
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                              Path(path).resolve().as_uri()],
                             capture_output=True, text=True, timeout=180)
    console = [ln for ln in out.stderr.splitlines() if ":CONSOLE" in ln]
    return Rendered(out.stdout, console)


def screenshot(path: Path, png: Path, width: int, height: int) -> Path | None:
    """A ``width`` x ``height`` PNG of the top of the page (an HTML or SVG file)."""
    browser = chromium()
    if browser is None:
        return None
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}",
                        f"--screenshot={png.resolve()}", f"--window-size={width},{height}",
                        Path(path).resolve().as_uri()], capture_output=True, timeout=180)
    return png
