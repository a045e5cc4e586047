"""Servers that lie or leak, end to end: after a lying bulk answer, the operator's resolve and a
rerun with changed names, every Kayse client still holds its own person; a key the server
quotes back appears in no file, and on no screen."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from pipeline import run
from tests.conftest import SANDBOX_TEST_KEY
from tests.e2e.test_load import MAPPING, SAMPLE, cli_run, live, load, settle_from_kayse


def renamed_copy(tmp_path: Path) -> Path:
    """The sample with every first name changed: the rerun updates every client."""
    with open(SAMPLE, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    column = rows[0].index("First Name")
    for row in rows[1:]:
        if row[column].strip():
            row[column] = row[column] + "x"
    path = tmp_path / "renamed.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def assert_every_client_holds_its_own_person(sandbox: Any, source: Path) -> None:
    validation = run.validate([source], MAPPING)
    clients = live(sandbox.state(), "clients")
    by_ext = {c["external_source_id"]: c for c in clients}
    assert len(by_ext) == len(clients), "duplicate clients"
    for row in validation.clients.iter_rows(named=True):
        kayse = by_ext[row["external_source_id"]]
        assert (kayse["first_name"], kayse["last_name"]) == (row["first_name"], row["last_name"]), row[
            "external_source_id"
        ]


@pytest.mark.parametrize("how", ["duplicate-ids", "shuffled", "bad-ids", "foreign-id"])
def test_after_a_lying_answer_every_client_keeps_its_own_person(
    sandbox: Any, tmp_path: Path, how: str
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    # the second clients batch lies (so "foreign-id" has the first batch's records to name)
    sandbox.inject("latency", "POST", "/v1/clients/bulk", seconds=0.01)
    sandbox.inject("lie", "POST", "/v1/clients/bulk", how=how)
    first = load(sandbox, ledger, batch_size=50)
    assert first.result is not None
    uncertain = [u for u in first.result.uncertain if u.kind == "client"]
    assert uncertain, "a lying answer must leave its items uncertain"
    assert settle_from_kayse(sandbox, ledger, tmp_path) == len(uncertain)

    renamed = renamed_copy(tmp_path)
    second = load(sandbox, ledger, source=renamed, batch_size=50)
    assert second.result is not None and second.result.uncertain == []
    assert second.result.steps["clients"].updated == first.validation.clients.height
    assert_every_client_holds_its_own_person(sandbox, renamed)


def test_a_key_the_server_quotes_reaches_no_file_and_no_screen(sandbox: Any, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    report = tmp_path / "report"
    sandbox.inject("leak-key", "POST", "/v1/clients/bulk", how="failed", count=1)
    sandbox.inject("leak-key", "POST", "/v1/cases/bulk", how="long-error", count=1)
    args = ["load", str(SAMPLE), "--mapping", str(MAPPING), "--ledger", str(ledger), "--plain"]
    done = cli_run(sandbox, *args, "--report-dir", str(report))
    assert done.returncode in (1, 3), done.stderr
    failed_csv = (report / "failed.csv").read_text(encoding="utf-8")
    assert "[redacted]" in failed_csv  # the refused client's message, as the server wrote it
    everything = done.stdout + done.stderr
    for path in [*report.iterdir(), *tmp_path.glob("ledger.sqlite*")]:
        everything += path.read_bytes().decode("utf-8", errors="replace")
    pieces = [SANDBOX_TEST_KEY[start : start + 8] for start in range(len(SANDBOX_TEST_KEY) - 7)]
    assert [piece for piece in pieces if piece in everything] == []
