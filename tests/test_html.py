"""Tests of report.html in a real browser: headless Chromium opens the shipped pages and one made
from the smoke records, with no console error, every cell of table4.csv in its cells table,
every ok run of runs.csv as a dot, sorting on a header's click, and nothing fetched.

The browser tests skip where no Chromium is installed (Debian: ``apt-get install chromium``;
.ci/run installs it). That a console error is caught at all is checked on a page with one.
"""
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from helpers import ROOT, SMOKE

from bench.analysis.aggregate import dataset_title
from bench.report import report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install "
                                    "chromium), so report.html cannot be opened in a browser here")
SHIPPED = ("table4-cpu", "paper")
CONSOLE_MARKS = ("CONSOLE", "Uncaught")  # how Chromium's stderr log shows a page's console messages and JS errors


class Page(HTMLParser):
    """What the tests read of a page: the cells table's rows (data-cell, each cell's data-sort),
    the dots' titles, and every src or href (a fetch)."""

    def __init__(self, text: str):
        super().__init__()
        self.table, self.cells, self.dots, self.fetches = None, [], [], []
        self._in_dot = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.fetches += [attrs[name] for name in ("src", "href") if name in attrs]
        if tag == "table":
            self.table = attrs.get("id")
        elif tag == "tr" and self.table == "cells" and "data-cell" in attrs:
            self.cells.append((attrs["data-cell"], []))
        elif tag == "td" and self.table == "cells" and self.cells:
            self.cells[-1][1].append(attrs.get("data-sort"))
        self._in_dot = self._in_dot or tag == "circle"

    def handle_endtag(self, tag):
        self._in_dot = self._in_dot and tag != "circle"

    def handle_data(self, data):
        if self._in_dot and self.lasttag == "title":
            self.dots.append(data)


def open_in_chromium(page: Path, profile: Path) -> tuple[str, list[str]]:
    """(the DOM after the page's scripts ran, the console lines of Chromium's log)."""
    done = subprocess.run([CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0",
                           f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=180, check=True)
    return done.stdout, [line for line in done.stderr.splitlines() if any(mark in line for mark in CONSOLE_MARKS)]


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke-html")
    report.write_report(SMOKE, out)
    return out


@pytest.fixture(params=[*SHIPPED, "smoke"])
def results(request, smoke_results):
    return smoke_results if request.param == "smoke" else ROOT / "results" / request.param


def expected_cells(results: Path) -> set[str]:
    cells = pd.read_csv(results / "table4.csv")
    cells = cells[cells["metric"] == "accuracy_pct"]
    return {f"{row} | {dataset_title(dataset)}" for row, dataset in zip(cells["row"], cells["dataset"])}


def expected_dots(results: Path) -> set[str]:
    runs = pd.read_csv(results / "runs.csv")
    runs = runs[runs["status"] == "ok"]
    return {f"seed {seed}, run {run_id} (runs/{run_id}.json)" for seed, run_id in zip(runs["seed"], runs["run_id"])}


@pytest.mark.slow
@needs_chromium
def test_a_javascript_error_on_a_page_is_caught(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><p>text</p><script>notDefinedAnywhere();</script></body></html>")
    _, console = open_in_chromium(page, tmp_path / "profile")
    assert any("Uncaught ReferenceError: notDefinedAnywhere" in line for line in console)


@pytest.mark.slow
@needs_chromium
def test_the_page_opens_without_a_console_message_and_shows_every_cell_and_every_run(results, tmp_path):
    dom, console = open_in_chromium(results / "report.html", tmp_path / "profile")
    assert console == []
    shown = Page(dom)
    rows = [cell for cell, _ in shown.cells]
    assert set(rows) == expected_cells(results) and len(rows) == len(expected_cells(results))
    assert {title.split(":")[0] for title in shown.dots} == expected_dots(results)


@pytest.mark.slow
@needs_chromium
def test_a_click_on_a_header_sorts_the_cells_by_it_and_a_second_the_other_way(smoke_results, tmp_path):
    text = (smoke_results / "report.html").read_text()
    accuracy = '#cells th:nth-child(4)'  # '#', Model, Dataset, Accuracy (%)
    orders = []
    for clicks in (1, 2):
        page = tmp_path / f"clicked{clicks}.html"
        page.write_text(text.replace("</body>", f"<script>{f'document.querySelector({accuracy!r}).click();' * clicks}"
                                                "</script></body>"))
        dom, console = open_in_chromium(page, tmp_path / "profile")
        assert console == []
        orders.append([float(sorts[3]) for _, sorts in Page(dom).cells])
    means = pd.read_csv(smoke_results / "table4.csv").query("metric == 'accuracy_pct'")["mean"]
    assert orders[0] == sorted(orders[0]) and orders[1] == sorted(orders[1], reverse=True)
    assert orders[0] == pytest.approx(sorted(means)) and orders[0] != [float(s[3]) for _, s in Page(text).cells]


@pytest.mark.parametrize("name", SHIPPED)
def test_the_page_fetches_nothing_so_it_opens_offline(name):
    page = Page((ROOT / "results" / name / "report.html").read_text())
    assert page.fetches == [] and page.cells and page.dots
