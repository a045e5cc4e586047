"""The ledger is the only memory of what exists in Kayse, so the CLI guards it: a file that is not
a ledger is refused before any request, two loads through different paths to one ledger never
both run, and the machine's failures (read-only, damaged) are one line and a code, never "a bug".
Also here: what a load names on screen and in its files cannot forge lines, a pipe is refused as
a source, and a report that cannot be written does not unsay a load that was sent."""

from __future__ import annotations

import contextlib
import csv
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline import run
from pipeline.ledger import Ledger
from tests.conftest import SANDBOX_TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data" / "leads.csv"
MAPPING = ROOT / "mappings" / "generic.yaml"


def kayse_etl(sandbox: Any, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAYSE_API_KEY": SANDBOX_TEST_KEY, "KAYSE_BASE_URL": sandbox.base_url}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def load_args(ledger: Path, *more: str) -> list[str]:
    return ["load", str(SAMPLE), "--mapping", str(MAPPING), "--ledger", str(ledger), "--plain", *more]


def live_clients(sandbox: Any) -> list[dict[str, Any]]:
    return [c for c in sandbox.state()["clients"] if not c.get("deleted")]


@pytest.mark.parametrize("content", ["empty", "another program's database", "text"])
def test_a_file_that_is_not_a_ledger_gets_exit_2_and_no_request(
    sandbox: Any, tmp_path: Path, content: str
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    if content == "empty":
        ledger.touch()
    elif content == "text":
        ledger.write_text("notes\n")
    else:
        with contextlib.closing(sqlite3.connect(ledger)) as other:
            other.execute("CREATE TABLE invoices (id INTEGER)")
            other.commit()
    before = ledger.read_bytes()
    refused = kayse_etl(sandbox, *load_args(ledger))
    assert refused.returncode == 2, refused.stderr
    assert "not a kayse-etl ledger" in refused.stderr and "Traceback" not in refused.stderr
    assert sandbox.request_log() == []
    assert ledger.read_bytes() == before


@pytest.mark.parametrize("alias", ["symlink", "hard link"])
def test_a_second_load_through_another_path_to_the_ledger_creates_nothing_twice(
    sandbox: Any, tmp_path: Path, alias: str
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    with Ledger.open(ledger):
        pass
    other_path = tmp_path / "elsewhere.sqlite"
    if alias == "symlink":
        other_path.symlink_to(ledger)
    else:
        os.link(ledger, other_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from pathlib import Path; from pipeline.ledger import Ledger\n"
            f"l = Ledger.open(Path({str(ledger)!r}))\n"
            "with l.exclusive():\n    print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        for leftover in tmp_path.glob("*.lock"):  # deleting a lock file changes nothing
            leftover.unlink()
        second = kayse_etl(sandbox, *load_args(other_path))
        assert second.returncode == 2, second.stderr
        assert "another load is using this ledger" in second.stderr
        assert sandbox.request_log() == []
    finally:
        holder.kill()
        holder.wait()
    first = kayse_etl(sandbox, *load_args(ledger))
    assert first.returncode == 1, first.stderr  # the sample has rejected rows
    again = kayse_etl(sandbox, *load_args(other_path))
    assert again.returncode == 1, again.stderr
    validation = run.validate([SAMPLE], MAPPING)
    ids = [c["external_source_id"] for c in live_clients(sandbox)]
    assert sorted(ids) == sorted(validation.clients["external_source_id"])  # each exactly once


def test_a_read_only_ledger_is_one_line_exit_2_and_no_request(sandbox: Any, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    with Ledger.open(ledger):
        pass
    if subprocess.run(["chattr", "+i", str(ledger)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (root ignores chmod)")
    try:
        refused = kayse_etl(sandbox, *load_args(ledger))
    finally:
        subprocess.run(["chattr", "-i", str(ledger)], check=True)
    assert refused.returncode == 2, refused.stderr
    assert "is read-only for you" in refused.stderr and "hint:" in refused.stderr
    assert "bug" not in refused.stderr and "Traceback" not in refused.stderr
    assert sandbox.request_log() == []


def test_a_damaged_ledger_is_one_line_and_exit_2(sandbox: Any, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    assert kayse_etl(sandbox, *load_args(ledger)).returncode == 1
    sandbox.reset()
    data = ledger.read_bytes()
    ledger.write_bytes(data[:4096] + b"\x5a" * (len(data) - 4096))
    refused = kayse_etl(sandbox, *load_args(ledger))
    assert refused.returncode == 2, refused.stderr
    assert "is damaged" in refused.stderr and "restore it from a backup" in refused.stderr
    assert "bug" not in refused.stderr
    assert sandbox.request_log() == []


def test_the_ledger_and_decisions_are_the_owners_only(sandbox: Any, tmp_path: Path) -> None:
    sandbox.inject("lost", method="POST", path="/v1/clients/bulk", count=1)
    ledger = tmp_path / "private" / "ledger.sqlite"
    env_umask = "import os, runpy, sys; os.umask(0o022); sys.argv = ['kayse-etl', *sys.argv[1:]]; runpy.run_module('pipeline', run_name='__main__')"
    env = {**os.environ, "KAYSE_API_KEY": SANDBOX_TEST_KEY, "KAYSE_BASE_URL": sandbox.base_url}
    for args in (load_args(ledger), ["uncertain", "--ledger", str(ledger), "--csv", str(tmp_path / "d.csv")]):
        done = subprocess.run(
            [sys.executable, "-c", env_umask, *args], env=env, capture_output=True, text=True, cwd=ROOT
        )
        assert done.returncode in (0, 1), done.stderr
    assert stat.S_IMODE(ledger.stat().st_mode) == 0o600
    assert stat.S_IMODE(ledger.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "d.csv").stat().st_mode) == 0o600
    assert not (tmp_path / "private" / "ledger.sqlite-wal").exists()  # folded into the file


def test_a_pipe_as_a_source_or_a_mapping_is_refused_not_read_forever(sandbox: Any, tmp_path: Path) -> None:
    fifo = tmp_path / "leads.csv"
    os.mkfifo(fifo)
    for args in (
        ["validate", str(fifo), "--mapping", str(MAPPING)],
        ["validate", str(SAMPLE), "--mapping", str(fifo)],
        ["validate", "/dev/stdin", "--mapping", str(MAPPING)],
    ):
        refused = kayse_etl(sandbox, *args, timeout=60)
        assert refused.returncode == 2, refused.stderr
        assert "is not a regular file" in refused.stderr


def test_a_file_name_cannot_forge_lines_on_screen(sandbox: Any, tmp_path: Path) -> None:
    forged = tmp_path / "x\nerror: all clear\x1b[2J.csv"
    refused = kayse_etl(sandbox, "validate", str(forged), "--mapping", str(MAPPING))
    assert refused.returncode == 2
    lines = refused.stderr.splitlines()
    assert not any(line.startswith("error: all clear") for line in lines)
    assert "\x1b" not in refused.stderr and "\\x1b[2J" in refused.stderr and "\\n" in refused.stderr


def test_escape_sequences_are_neutralized_in_the_csv_reports(sandbox: Any, tmp_path: Path) -> None:
    source = tmp_path / "leads.csv"
    rows = SAMPLE.read_text(encoding="utf-8").splitlines()
    header, first = rows[0], rows[1].split(",")
    first[1] = "Ty\x1b[31mler\x9b"  # a first name with a colour escape and a C1 byte
    first[4] = "not a phone\x1b]0;owned\x07"  # rejected: the raw value lands in rejects.csv
    source.write_text("\n".join([header, ",".join(first)]) + "\n", encoding="utf-8")
    report = tmp_path / "report"
    kayse_etl(sandbox, "validate", str(source), "--mapping", str(MAPPING), "--report-dir", str(report))
    written = {p.name: p.read_text(encoding="utf-8-sig") for p in report.glob("*.csv")}
    assert written, "the reports should have been written"
    for name, text in written.items():
        assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text, name
    cells = [cell for text in written.values() for row in csv.reader(text.splitlines()) for cell in row]
    assert any("\\x1b[31m" in cell for cell in cells)


def test_a_report_that_cannot_be_written_after_the_send_does_not_unsay_the_load(
    sandbox: Any, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    not_a_folder = tmp_path / "report"
    not_a_folder.write_text("a file where the report folder should be")
    done = kayse_etl(sandbox, *load_args(ledger, "--report-dir", str(not_a_folder)))
    assert done.returncode == 1, done.stderr  # the load's own code: rows rejected in the sample
    assert "nothing was sent" not in done.stdout + done.stderr
    assert "error: the reports were not written" in done.stderr
    assert live_clients(sandbox), "the load itself went through"
    assert "reports written to" not in done.stdout
