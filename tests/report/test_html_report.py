"""report.html rendered by a real browser (headless Chromium): what the page shows after rendering,
that a cell holding markup is shown as text and never run, and that nothing outside the page is
referenced. Chromium is required: CI installs Debian's `chromium` package (see .ci/run)."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bench.make_samples import SAMPLE_DIR
from pipeline import run
from pipeline.model import ValidationResult
from pipeline.report.html import render_html
from pipeline.report.validation import summary, write_validation_report
from tests.report.conftest import GENERIC_MAPPING

SCRIPT_CELL = "<script>document.title='pwned'</script>"
IMAGE_CELL = "<img src=x onerror=\"document.title='img'\">"


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "chromium is not installed: this test renders report.html in a real browser. Install Debian's "
            "package: apt-get update && apt-get install -y --no-install-recommends chromium (.ci/run does)"
        )
    return found


def browse(page: Path, tmp_path: Path, *extra: str) -> str:
    """Run headless Chromium on the page, offline and with no profile left behind; its stdout."""
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *extra,
        page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _Page(HTMLParser):
    """The rendered DOM: texts by element id, the title, every tag seen, the bars of each chart."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.title = ""
        self.text_by_id: dict[str, str] = {}
        self.bars: dict[str, list[str]] = {}
        self._open_ids: list[tuple[str, str]] = []
        self._svg: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append(tag)
        self._in_title = tag == "title" and self._svg is None  # not a bar's tooltip
        if tag == "svg":
            self._svg = found.get("id") or ""
        if tag == "rect" and "bar" in (found.get("class") or "").split() and self._svg is not None:
            self.bars.setdefault(self._svg, []).append(found.get("data-key") or "")
        if found.get("id"):
            self._open_ids.append((tag, found["id"] or ""))
            self.text_by_id.setdefault(found["id"] or "", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg = None
        if self._open_ids and self._open_ids[-1][0] == tag:
            self._open_ids.pop()
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        for _, element_id in self._open_ids:
            self.text_by_id[element_id] += data


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[ValidationResult, Path]:
    """The sample with markup in two cells: a phone (rejected, so it is shown as an example) and
    a first name (a valid row)."""
    folder = tmp_path_factory.mktemp("hostile")
    with (SAMPLE_DIR / "leads.csv").open(encoding="utf-8-sig", newline="") as handle:
        records = list(csv.reader(handle))
    header = records[0]
    records[1][header.index("Mobile Phone")] = SCRIPT_CELL
    records[2][header.index("Email")] = IMAGE_CELL
    source = folder / "leads.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(records)
    result = run.validate([source], GENERIC_MAPPING)
    write_validation_report(result, folder / "report")
    return result, folder / "report" / "report.html"


def test_the_page_shows_the_counts_and_one_bar_per_code(
    hostile: tuple[ValidationResult, Path], tmp_path: Path
) -> None:
    result, page = hostile
    dom = _Page()
    dom.feed(browse(page, tmp_path, "--dump-dom"))
    assert dom.text_by_id["rows-read"].split() == [f"{result.rows_read:,}", "rows", "read"]
    assert dom.text_by_id["rows-valid"].split()[0] == f"{result.rows_valid:,}"
    assert dom.text_by_id["rows-rejected"].split()[0] == f"{result.rows_rejected:,}"
    assert dom.text_by_id["clients"].split()[0] == f"{result.clients.height:,}"
    assert dom.text_by_id["cases"].split()[0] == f"{result.cases.height:,}"
    codes = summary(result)["rows_by_code"]
    assert dom.bars["chart-by-code"] == list(codes)  # one bar per code, most rows first
    assert "Mobile Phone" in dom.bars["chart-by-column"]
    for case_type in summary(result)["cases_by_type"]:
        assert case_type in dom.text_by_id["per-case-type"]


def test_a_cell_holding_markup_is_shown_as_text_and_never_runs(
    hostile: tuple[ValidationResult, Path], tmp_path: Path
) -> None:
    _, page = hostile
    rendered = browse(page, tmp_path, "--dump-dom")
    dom = _Page()
    dom.feed(rendered)
    assert dom.title == "kayse-etl validation report"  # the injected script did not run
    assert "script" not in dom.tags and "img" not in dom.tags
    assert SCRIPT_CELL in dom.text_by_id["examples"]  # shown, as text
    assert IMAGE_CELL in dom.text_by_id["examples"]


def test_a_screenshot_is_kept_and_nothing_outside_the_page_is_referenced(
    hostile: tuple[ValidationResult, Path], tmp_path: Path
) -> None:
    _, page = hostile
    shot = tmp_path / "report.png"
    browse(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,1600")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert not re.search(r"<(script|link|img|iframe|object)\b|@import|url\(", html, re.IGNORECASE)
    assert "default-src 'none'" in html  # the page may load and run nothing, even if it tried


def test_every_text_is_escaped_before_it_reaches_the_page(hostile: tuple[ValidationResult, Path]) -> None:
    result, _ = hostile
    html = render_html(result)
    assert SCRIPT_CELL not in html and "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in html
