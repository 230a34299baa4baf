"""The two pictures of docs/reading.md, taken the way the tests see the views: the report of
``sample_masks/`` in headless Chromium, and ``ticketlens inspect sample_masks/`` driven
headless by Textual (its SVG screenshot, turned into a PNG by Chromium).

    python tests/screenshots.py            # rewrites docs/img/report.png and docs/img/inspect.png

``test_report.py`` takes both into a temporary folder, so a change that breaks either is seen.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import browser  # noqa: E402  (tests/browser.py)

SAMPLE = ROOT / "sample_masks"
DOCS = ROOT / "docs" / "img"


def report_png(out: Path, width: int = 1200, height: int = 1500) -> Path | None:
    """The top of the report of the sample runs: the introduction, the summary and the
    metric vs sparsity panels."""
    from ticketlens.cli.main import main

    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        if main(["report", str(SAMPLE), "-o", str(page)]) != 0:
            raise RuntimeError("report failed")
        return _small(browser.screenshot(page, out, width, height))


def inspect_svg(out: Path, size: tuple[int, int] = (120, 36)) -> Path:
    """``inspect`` on the sample runs at ``size`` (columns, rows), the first run opened on its
    rounds tab, as Textual draws it."""
    from ticketlens.tui.app import create_app

    async def take() -> Path:
        app = create_app([str(SAMPLE)])
        async with app.run_test(size=size) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.press("enter")  # open the first run
            await app.workers.wait_for_complete()
            await pilot.pause()
            return Path(app.save_screenshot(out.name, str(out.parent)))

    out.parent.mkdir(parents=True, exist_ok=True)
    return asyncio.run(take())


def inspect_png(out: Path) -> Path | None:
    with tempfile.TemporaryDirectory() as tmp:
        svg = inspect_svg(Path(tmp) / "inspect.svg")
        width, height = _svg_size(svg)
        return _small(browser.screenshot(svg, out, width, height))


def _svg_size(svg: Path) -> tuple[int, int]:
    import re

    head = svg.read_text(encoding="utf-8")[:2000]
    m = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', head)
    return (int(float(m.group(1))) + 1, int(float(m.group(2))) + 1) if m else (1500, 900)


def _small(png: Path | None) -> Path | None:
    """The PNG with a 256-colour palette (a third of the bytes; text stays sharp), where
    Pillow is installed."""
    if png is None or not png.exists():
        return None
    try:
        from PIL import Image
    except ImportError:
        return png
    with Image.open(png) as im:
        im.convert("RGB").quantize(256).save(png, optimize=True)
    return png


if __name__ == "__main__":
    for name, take in (("report.png", report_png), ("inspect.png", inspect_png)):
        path = take(DOCS / name)
        print(f"{path}: {path.stat().st_size:,} bytes" if path else f"{name}: no Chromium")
