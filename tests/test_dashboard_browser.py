"""The dashboard in a real browser: Debian's chromium driven by Playwright (never a browser a test tool downloads).

``make test`` installs chromium first (``make browser``); without it this test is skipped with the reason.
With ``LRFR_SCREENSHOTS=1`` the screenshot is also copied to ``_build/screenshots/dashboard.png``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lrfr.bench.dashboard import CHROMIUM, chromium, drag_box, projection_drag_area, serve
from tests.dashboard_fixtures import make_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_box_selection_shows_the_selected_faces(tmp_path, monkeypatch):
    if not CHROMIUM.is_file():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (`make browser` installs it as root)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    make_run(tmp_path / "results", images=200)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # for the server: the machine's cores are shared
    screenshot = tmp_path / "dashboard.png"
    with serve(tmp_path / "results") as url, chromium(tmp_path / "profile", height=2400) as page:
        page.goto(url)
        drag_box(page, projection_drag_area(page))
        page.locator("img.lrfr-thumb").first.wait_for(timeout=60_000)
        assert page.locator("img.lrfr-thumb").count() >= 2
        assert page.locator("img.lrfr-thumb").first.evaluate("image => image.naturalWidth") > 0
        page.screenshot(path=str(screenshot))
    assert screenshot.stat().st_size > 0
    if os.environ.get("LRFR_SCREENSHOTS") == "1":
        target = ROOT / "_build" / "screenshots" / "dashboard.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, target)
