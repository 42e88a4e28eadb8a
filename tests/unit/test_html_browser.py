"""The HTML report in a real browser: headless Chromium lays it out, and its first screen holds the summary.

Needs Chromium (Debian: ``apt-get update && apt-get install -y chromium``).
Without it the tests are skipped, except under CI (``CI`` set), where they
fail: CI must not pass without having looked. ``HETERO_CHROMIUM`` names
another binary; ``HETERO_SCREENSHOT_DIR`` keeps the screenshots (for a CI
artefact, or to look at them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from html_reports import four_workloads
from PIL import Image

from pytest_hetero.reporting.html import render_html
from pytest_hetero.reporting.html_model import CLASS_COLORS

WINDOW = (1400, 900)
INSTALL = "apt-get update && apt-get install -y chromium"
#: Test-only: measures the layout and writes it into the DOM, which --dump-dom prints. The report has no script.
PROBE = """<script>
const box = (el) => { const r = el.getBoundingClientRect(); return {top: r.top, bottom: r.bottom}; };
document.body.dataset.layout = JSON.stringify({
  viewport: {width: innerWidth, height: innerHeight},
  summary: box(document.querySelector("#summary")),
  matrix: box(document.querySelector("table.matrix")),
  legend: box(document.querySelector("#summary .legend")),
  figure: box(document.querySelector("figure")),
  images: [...document.images].map((img) => img.naturalWidth),
});
</script>"""


@pytest.fixture(scope="module")
def chromium() -> str:
    names = [os.environ.get("HETERO_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"]
    found = next((path for path in map(shutil.which, filter(None, names)) if path), None)
    if found is not None:
        return found
    reason = f"headless Chromium is not installed ({INSTALL})"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the browser check must run")
    pytest.skip(reason)


def browse(chromium: str, tmp_path: Path, page: Path, *args: str) -> str:
    argv = [
        chromium,
        "--headless",
        "--no-sandbox",  # as root, in a container
        "--disable-gpu",
        "--disable-quic",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        *args,
        page.as_uri(),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four-workload report with a slowdown on one platform: failures and passes in the matrix."""
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html([four_workloads(slowdown=0.5)]), encoding="utf-8")
    return path


def test_the_browser_lays_out_the_summary_on_the_first_screen(chromium: str, page: Path, tmp_path: Path) -> None:
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = browse(chromium, tmp_path, probed, "--dump-dom")
    found = re.search(r'data-layout="([^"]*)"', dom)
    assert found, dom[:2000]
    layout = json.loads(found.group(1).replace("&quot;", '"'))
    assert layout["viewport"]["width"] == WINDOW[0]
    assert layout["summary"]["top"] < layout["matrix"]["top"] < layout["matrix"]["bottom"]
    assert layout["legend"]["bottom"] <= layout["viewport"]["height"]  # the matrix and its legend fit
    assert layout["matrix"]["bottom"] <= layout["figure"]["top"]  # charts come after it
    assert layout["images"] and all(width > 0 for width in layout["images"])  # every figure decodes
    order = [dom.index(marker) for marker in ('id="summary"', 'class="matrix"', "<figure", 'id="details"')]
    assert order == sorted(order)


def test_the_screenshot_of_the_first_screen_shows_the_coloured_matrix(
    chromium: str, page: Path, tmp_path: Path
) -> None:
    shot = Path(os.environ.get("HETERO_SCREENSHOT_DIR") or tmp_path) / "report-first-screen.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    browse(chromium, tmp_path, page, f"--screenshot={shot}")
    with Image.open(shot) as image:
        assert image.size == WINDOW
        colours = image.convert("RGB").getcolors(maxcolors=WINDOW[0] * WINDOW[1]) or []
    counts = {f"#{r:02x}{g:02x}{b:02x}": n for n, (r, g, b) in colours}
    for verdict in ("good", "bad"):  # the matrix cells' tints: passes and failures are both on screen
        tint = CLASS_COLORS[verdict][1]
        assert counts.get(tint, 0) > 5000, (verdict, tint, shot)
