"""A rollback never leaves a case without its client: run 1 makes the clients and stops at the
quota, run 2 makes their cases; undoing run 1 keeps the clients those cases need (or, when
asked, deletes those cases too), and says what it will delete, with counts, before asking."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pipeline import run
from pipeline.model import LoadOutcome
from pipeline.settings import Connection
from tests.conftest import SANDBOX_TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data" / "leads.csv"
MAPPING = ROOT / "mappings" / "generic.yaml"


def load(sandbox: Any, ledger: Path, **options: Any) -> LoadOutcome:
    connection = Connection(sandbox.base_url, SANDBOX_TEST_KEY)
    return run.load([SAMPLE], MAPPING, connection=connection, ledger_path=ledger, **options)


def rollback(sandbox: Any, *args: str, answer: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAYSE_API_KEY": SANDBOX_TEST_KEY, "KAYSE_BASE_URL": sandbox.base_url}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "rollback", *args],
        env=env,
        input=answer,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def live(sandbox: Any) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    state = sandbox.state()
    clients = {c["id"]: c for c in state["clients"] if not c.get("deleted")}
    cases = {c["id"]: c for c in state["cases"] if not c.get("deleted")}
    return clients, cases


def assert_no_case_without_its_client(sandbox: Any) -> None:
    clients, cases = live(sandbox)
    orphans = [case_id for case_id, case in cases.items() if not set(case["client_ids"]) <= set(clients)]
    assert orphans == [], f"{len(orphans)} live case(s) lost their client"


def clients_then_cases(sandbox: Any, ledger: Path) -> tuple[LoadOutcome, LoadOutcome]:
    """Run 1 sends the clients and stops at the quota; run 2 sends their cases."""
    planned = run.plan([SAMPLE], MAPPING, base_url=sandbox.base_url, ledger_path=ledger)
    sandbox.configure(rate_limit=planned.plan.requests["clients"], rate_window=3600)
    first = load(sandbox, ledger, max_wait=0.1)
    assert first.result is not None and first.result.outcome == "stopped"
    clients, cases = live(sandbox)
    assert len(clients) == first.validation.clients.height and cases == {}
    sandbox.configure(rate_limit=500, rate_window=1)
    time.sleep(1.1)
    second = load(sandbox, ledger)
    assert (
        second.result is not None and second.result.steps["cases"].created == second.validation.cases.height
    )
    return first, second


def test_rolling_back_the_run_that_made_the_clients_keeps_those_later_cases_need(
    sandbox: Any, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    first, second = clients_then_cases(sandbox, ledger)
    assert first.result is not None and second.result is not None
    run1, run2 = first.result.run_id, second.result.run_id
    needed = second.validation.cases["client_external_source_id"].n_unique()
    not_needed = first.validation.clients.height - needed

    # the confirmation shows what will be deleted, with counts, before asking
    declined = rollback(sandbox, str(run1), "--ledger", str(ledger), answer="n\n")
    assert declined.returncode != 0
    assert f"{not_needed} client(s) run {run1} created" in declined.stdout
    assert f"keep {needed} of its client(s)" in declined.stdout and f"run {run2}:" in declined.stdout
    assert len(live(sandbox)[0]) == first.validation.clients.height  # nothing deleted

    done = rollback(sandbox, str(run1), "--ledger", str(ledger), "--yes")
    assert done.returncode == 1, done.stderr  # not all of run 1 could be undone
    assert f"clients deleted: {not_needed}, not deleted: 0" in done.stdout
    assert f"{needed} client(s) kept" in done.stdout
    assert f"run {run2}: {second.validation.cases.height}" in done.stdout
    assert "--with-dependent-cases" in done.stdout
    assert_no_case_without_its_client(sandbox)
    clients, cases = live(sandbox)
    assert len(cases) == second.validation.cases.height and len(clients) == needed

    # asked explicitly: the dependent cases go too, and the counts say so
    everything = rollback(sandbox, str(run1), "--ledger", str(ledger), "--yes", "--with-dependent-cases")
    assert everything.returncode == 0, everything.stderr
    assert f"cases deleted: {second.validation.cases.height}" in everything.stdout
    assert f"clients deleted: {needed}" in everything.stdout
    assert f"{second.validation.cases.height} belonged to other runs" in everything.stdout
    assert_no_case_without_its_client(sandbox)
    assert live(sandbox) == ({}, {})
    # and the ledger forgot them: the next load creates them all afresh, linked
    again = load(sandbox, ledger)
    assert again.result is not None
    assert again.result.steps["clients"].created == first.validation.clients.height
    assert again.result.steps["cases"].created == second.validation.cases.height
    assert_no_case_without_its_client(sandbox)


def test_a_ledger_of_an_older_version_learns_the_links_from_kayse(sandbox: Any, tmp_path: Path) -> None:
    """Cases recorded without their client (before the ledger kept links) are looked up."""
    ledger = tmp_path / "ledger.sqlite"
    first, second = clients_then_cases(sandbox, ledger)
    assert first.result is not None
    with contextlib.closing(sqlite3.connect(ledger)) as db:
        db.execute("DELETE FROM case_clients")
        db.commit()
    done = rollback(sandbox, str(first.result.run_id), "--ledger", str(ledger), "--yes")
    assert done.returncode == 1, done.stderr
    assert_no_case_without_its_client(sandbox)
    assert len(live(sandbox)[1]) == second.validation.cases.height


def test_a_run_that_made_clients_and_their_cases_is_undone_whole(sandbox: Any, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    first = load(sandbox, ledger)
    assert first.result is not None
    done = rollback(sandbox, str(first.result.run_id), "--ledger", str(ledger), "--yes")
    assert done.returncode == 0, done.stderr
    assert "kept" not in done.stdout
    assert live(sandbox) == ({}, {})
