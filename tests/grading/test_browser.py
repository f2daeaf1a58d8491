"""The reports' HTML in a real browser (headless Chromium through Playwright): it loads without an error or a
request, shows the verdict, reads in a light and a dark theme, folds its details; the screenshots in
docs/img are made here.

Needs the ``playwright`` package (no browser download: it drives the system's Chromium) and a Chromium
(Debian: ``apt-get install -y chromium``); skipped, with the reason, where either is missing. A Chromium
elsewhere than on PATH: ``MANUAL_BACKPROP_CHROMIUM=/path/to/chrome``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from display_helpers import NO_MASK, namespace
from manual_backprop import check_backward, grade_notebook_here
from published_style import LOSS

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (pip install playwright)")

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
# The themes the report must read in: JupyterLab's light and dark page colours.
THEMES = {"light": ("#ffffff", "rgba(0, 0, 0, 0.87)"), "dark": ("#111111", "rgba(255, 255, 255, 0.87)")}
# Roughly what JupyterLab's stylesheet does to tables in an output (jp-RenderedHTMLCommon): right-aligned
# cells, striped and hovered rows, centred tables. The report's inline styles must hold against it.
JUPYTER_CSS = """
.jp-RenderedHTMLCommon table { border-collapse: collapse; border-spacing: 0; border: none; margin-left: auto;
  margin-right: auto; table-layout: fixed; font-size: 12px; }
.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { text-align: right; vertical-align: middle;
  padding: 0.5em; border: none; white-space: normal; }
.jp-RenderedHTMLCommon tbody tr:nth-child(odd) { background: rgba(128, 128, 128, 0.06); }
.jp-RenderedHTMLCommon pre { background: transparent; }
"""


def _chromium() -> str | None:
    chosen = os.environ.get("MANUAL_BACKPROP_CHROMIUM")
    if chosen:
        return chosen
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


pytestmark = pytest.mark.skipif(_chromium() is None, reason="no Chromium found (apt-get install -y chromium, "
                                "or set MANUAL_BACKPROP_CHROMIUM)")


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def reports():
    # What a student of the published notebook sees in Jupyter: graded as a notebook, sum-of-squares loss.
    right = grade_notebook_here(namespace(loss=LOSS, notebook=True))
    wrong = check_backward(namespace(backward=NO_MASK, loss=LOSS, notebook=True)["backward_pass"])
    assert right.ok and not wrong.ok
    return {"pass": right, "fail": wrong}


def _page(browser, fragment: str, theme: str):
    """A page holding the fragment as a notebook output would, and what went wrong while it loaded."""
    background, color = THEMES[theme]
    page = browser.new_page(viewport={"width": 1000, "height": 400})
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.route("**/*", lambda route: (problems.append(f"request: {route.request.url}"), route.abort()))
    page.set_content(f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{JUPYTER_CSS}</style></head>"
                     f"<body style='background: {background}; color: {color}; margin: 12px; font-family: "
                     f"system-ui, sans-serif; font-size: 14px'><div class='jp-RenderedHTMLCommon'>{fragment}"
                     "</div></body></html>")
    return page, problems


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("which", ["pass", "fail"])
def test_the_report_loads_cleanly_shows_its_verdict_and_is_screenshotted(browser, reports, which, theme):
    report = reports[which]
    page, problems = _page(browser, report._repr_html_(), theme)
    verdict = ("OK: compute_network_output and backward_pass pass" if which == "pass"
               else "FAIL: 8 of 8 cases fail")
    assert page.get_by_text(verdict).first.is_visible()
    if which == "fail":
        assert page.get_by_text("first wrong layer: 4").first.is_visible()
    # The text keeps the theme's colour (color: inherit): readable on the page's own background.
    colors = page.evaluate("""() => [getComputedStyle(document.body).color,
        ...[...document.querySelectorAll('td, th, summary')].map(e => getComputedStyle(e).color)]""")
    assert set(colors) == {colors[0]}
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    suffix = "" if theme == "light" else "-dark"
    page.screenshot(path=str(DOCS_IMG / f"report-{which}{suffix}.png"), full_page=True)
    assert problems == []
    page.close()


def test_a_rows_details_are_folded_until_opened(browser, reports):
    page, problems = _page(browser, reports["fail"]._repr_html_(), "light")
    detail = page.locator("td details pre").first
    assert "activation mask missing" in detail.text_content()
    assert not detail.is_visible()
    page.locator("td details summary").first.click()
    assert detail.is_visible()
    assert problems == []
    page.close()
