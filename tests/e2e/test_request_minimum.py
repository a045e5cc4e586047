"""Requests are the scarce resource: a load sends about the fewest the data needs.

The minimum for a first load is one bulk request per B clients and per B cases, one create per
list (carrying its members) and one per campaign, with B the largest batch the account takes.
At the default batch size an account that takes 500 gets at most one request more; an account
capped lower is told once per kind (its refusal names the cap), remembers it, and from then on
the plan is exactly what is sent."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest

from pipeline import run
from pipeline.ledger import Ledger, Target
from pipeline.settings import key_fingerprint
from tests.conftest import SANDBOX_TEST_KEY
from tests.e2e.test_load import MAPPING, SAMPLE, assert_exactly_one_of_everything, load

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def writes_logged(sandbox: Any) -> int:
    return sum(1 for r in sandbox.request_log() if r.get("method") in WRITES and r["path"].startswith("/v1/"))


def changed_copy(tmp_path: Path) -> Path:
    """The sample with every client's and every case's data changed: a rerun updates them all."""
    with open(SAMPLE, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["Address 2"] = "Unit 9"
        row["Description"] = (row["Description"] or "") + " (updated)"
    target = tmp_path / "leads_changed.csv"
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return target


@pytest.mark.parametrize(("bulk_max", "slack"), [(500, 1), (150, 6)], ids=["account-500", "account-150"])
def test_a_load_sends_at_most_the_minimum_plus_slack(
    sandbox: Any, tmp_path: Path, bulk_max: int, slack: int
) -> None:
    sandbox.configure(bulk_max=bulk_max)
    ledger = tmp_path / "ledger.sqlite"
    first = load(sandbox, ledger, campaign=True)  # default flags: batch size 500
    assert first.result is not None and first.result.outcome != "stopped"
    data = first.validation
    minimum = (
        math.ceil(data.clients.height / bulk_max)
        + math.ceil(data.cases.height / bulk_max)
        + len(first.plan.case_lists)
        + len(first.plan.campaigns)
    )
    sent = first.result.requests_sent
    assert sent == writes_logged(sandbox)  # every request counted, none hidden
    assert sent <= minimum + slack, (sent, minimum)
    # the re-planned count (after a size refusal) is what was sent
    assert first.result.planned_requests == sent
    assert first.result.failed == [] and first.result.uncertain == []
    assert_exactly_one_of_everything(sandbox, data, campaigns=True)
    with Ledger.open(ledger) as db:
        caps = db.bulk_caps(Target(sandbox.base_url, key_fingerprint(SANDBOX_TEST_KEY)))
    assert caps == ({} if bulk_max == 500 else {"client": 150, "case": 150})

    # With the cap known, the plan is exactly what is sent: every record changed, so updated.
    before = writes_logged(sandbox)
    second = load(sandbox, ledger, source=changed_copy(tmp_path), campaign=True)
    assert second.result is not None and second.result.failed == []
    assert second.result.steps["clients"].updated == data.clients.height
    assert second.result.steps["cases"].updated == data.cases.height
    updates = math.ceil(data.clients.height / bulk_max) + math.ceil(data.cases.height / bulk_max)
    assert second.plan.total_requests == second.result.requests_sent == updates
    assert writes_logged(sandbox) - before == updates
    assert_exactly_one_of_everything(sandbox, second.validation, campaigns=True)

    # An unchanged rerun sends no write at all.
    before = writes_logged(sandbox)
    third = load(sandbox, ledger, source=changed_copy(tmp_path), campaign=True)
    assert third.result is not None
    assert third.plan.total_requests == third.result.requests_sent == 0
    assert writes_logged(sandbox) == before


def test_the_plan_uses_the_cap_learned_by_an_earlier_load(sandbox: Any, tmp_path: Path) -> None:
    """`plan` (no key needed) reads the caps from the ledger, so it says what load will send."""
    sandbox.configure(bulk_max=150)
    ledger = tmp_path / "ledger.sqlite"
    load(sandbox, ledger, source=SAMPLE)
    planned = run.plan([changed_copy(tmp_path)], MAPPING, base_url=sandbox.base_url, ledger_path=ledger)
    assert planned.plan.requests["clients"] == math.ceil(planned.validation.clients.height / 150)
    assert planned.plan.requests["cases"] == math.ceil(planned.validation.cases.height / 150)
