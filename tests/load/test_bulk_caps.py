"""Batches as large as the account takes: a size refusal is read for its cap, the cap is kept
per target in the ledger, the rest of the step goes out in batches that fit, and the next plan
uses it — so what `plan` says is what `load` sends."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from pipeline.kayse import BadRequest, BatchTooLarge, RequestRejected, as_batch_too_large
from pipeline.ledger import Ledger, Target
from pipeline.load import execute
from pipeline.model import LedgerSnapshot, RunResult, ValidationResult
from pipeline.plan import DEFAULT_BATCH_SIZE, build_plan
from tests.load.fake_kayse import FakeKayse
from tests.load.helpers import leads

TARGET = Target("http://kayse.test/v1", "sha256:000000000000")
OTHER = Target("http://kayse.test/v1", "sha256:111111111111")
TODAY = date(2026, 11, 23)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "ledger.sqlite") as opened:
        yield opened


def load_once(kayse: FakeKayse, ledger: Ledger, data: ValidationResult, **options: object) -> RunResult:
    """What `pipeline.run.load` does around the stage, caps included."""
    plan = build_plan(
        data, ledger.snapshot(TARGET), bulk_caps=ledger.bulk_caps(TARGET), today=TODAY, **options
    )
    run_id = ledger.start_run(TARGET, "load", {}, plan.total_requests)
    return execute(plan, kayse, ledger, TARGET, run_id)


# ---- reading a refusal ------------------------------------------------------------------------


def refusal(status: int, message: str | None) -> RequestRejected:
    kind = BadRequest if status == 400 else RequestRejected
    return kind("refused", status=status, error="bad request", api_message=message)


@pytest.mark.parametrize(
    ("status", "message", "cap"),
    [
        (400, "clients: at most 150 items per request, got 500", 150),  # the sandbox's words
        (400, "maximum of 200 records per request", 200),
        (400, "batch size limit is 250", 250),
        (413, None, None),  # too large, no number: the caller halves
        (413, "at most 100 items", 100),
    ],
)
def test_a_size_refusal_is_read_with_its_cap(status: int, message: str | None, cap: int | None) -> None:
    too_large = as_batch_too_large(refusal(status, message), 500)
    assert isinstance(too_large, BatchTooLarge)
    assert too_large.cap == cap and too_large.items == 500 and too_large.status == status


@pytest.mark.parametrize(
    "message",
    [
        "clients[3]: first_name: at most 100 characters",  # one bad item, not the batch's size
        "mobile: must be an E.164 phone number",
        "at most 600 items per request",  # a cap above the batch did not refuse this batch
        None,
    ],
)
def test_other_refusals_are_not_about_size(message: str | None) -> None:
    assert as_batch_too_large(refusal(400, message), 500) is None


# ---- the ledger keeps caps per target -----------------------------------------------------------


def test_caps_are_kept_per_target_and_only_ever_lowered(ledger: Ledger) -> None:
    assert ledger.bulk_caps(TARGET) == {}
    ledger.record_bulk_cap(TARGET, "client", 150)
    ledger.record_bulk_cap(TARGET, "client", 300)  # a later, looser reading does not raise it
    ledger.record_bulk_cap(TARGET, "members", 50)
    assert ledger.bulk_caps(TARGET) == {"client": 150, "members": 50}
    assert ledger.bulk_caps(OTHER) == {}
    with pytest.raises(ValueError):
        ledger.record_bulk_cap(TARGET, "case", 0)


# ---- planning with caps -------------------------------------------------------------------------


def test_the_default_batch_is_what_accounts_accept() -> None:
    assert DEFAULT_BATCH_SIZE == 500
    plan = build_plan(leads(700), ledger_snapshot(), today=TODAY)
    # 2 + 2 bulk requests, one list create carrying 500 members, one attach for the other 200
    assert plan.requests == {"clients": 2, "cases": 2, "case_lists": 1, "membership": 1, "campaigns": 0}


def test_the_plan_packs_each_kind_to_its_learned_cap() -> None:
    caps = {"client": 150, "members": 300}
    plan = build_plan(leads(700), ledger_snapshot(), bulk_caps=caps, today=TODAY)
    assert plan.requests == {"clients": 5, "cases": 2, "case_lists": 1, "membership": 2, "campaigns": 0}
    # a cap never raises the batch size the caller chose
    small = build_plan(leads(700), ledger_snapshot(), batch_size=100, bulk_caps=caps, today=TODAY)
    assert small.requests["clients"] == 7 and small.requests["cases"] == 7


def ledger_snapshot() -> LedgerSnapshot:
    return LedgerSnapshot(target=str(TARGET))


# ---- loading: learn once, then send exactly the plan ---------------------------------------------


@pytest.mark.parametrize("named", [True, False], ids=["cap-named", "bare-413"])
def test_a_size_refusal_is_learned_once_and_the_rest_sent_in_batches_that_fit(
    ledger: Ledger, named: bool
) -> None:
    kayse = FakeKayse()
    kayse.caps_named = named
    kayse.caps.update({"upsert_clients": 150, "upsert_cases": 150, "case_lists.attach": 150})
    kayse.caps["case_lists.create"] = 150
    data = leads(700)
    first = load_once(kayse, ledger, data)
    assert first.outcome == "ok" and first.failed == [] and first.uncertain == []
    assert len(kayse.clients) == 700 and len(kayse.cases) == 700
    assert len(kayse.lists) == 1 and next(iter(kayse.lists.values())).case_ids == set(kayse.cases)
    learned = 150 if named else 125  # a bare 413 halves: 500 → 250 → 125
    assert ledger.bulk_caps(TARGET) == {"client": learned, "case": learned, "members": learned}
    refusals = [c for c in kayse.calls if c.endswith("refused")]
    # once per kind (twice when only halving); the list's create teaches attach its cap too
    assert len(refusals) == (3 if named else 6)
    fitting = math.ceil(700 / learned)
    assert kayse.calls.count("upsert_clients") == fitting == kayse.calls.count("upsert_cases")
    # the run's planned count was re-planned at the learned caps: it is what was sent
    assert first.planned_requests == first.requests_sent == len(kayse.calls)

    # The next load plans with the caps from the start: plan == sent, and no refusal.
    kayse.calls.clear()
    kayse.requests_sent = 0
    more = leads(900)
    plan = build_plan(more, ledger.snapshot(TARGET), bulk_caps=ledger.bulk_caps(TARGET), today=TODAY)
    second = execute(plan, kayse, ledger, TARGET, ledger.start_run(TARGET, "load", {}, plan.total_requests))
    assert second.requests_sent == plan.total_requests == second.planned_requests == len(kayse.calls)
    assert not [c for c in kayse.calls if c.endswith("refused")]
    assert len(kayse.clients) == 900 and len(kayse.cases) == 900


def test_a_refused_batch_leaves_no_intent_open(ledger: Ledger) -> None:
    """The refused batch was never applied: its records are not uncertain, nor counted as sent."""
    kayse = FakeKayse()
    kayse.caps["upsert_clients"] = 2
    result = load_once(kayse, ledger, leads(3), batch_size=3)
    assert result.uncertain == [] and ledger.uncertain() == []
    assert result.steps["clients"].sent == 3 and result.steps["clients"].created == 3
    assert kayse.calls[:3] == ["upsert_clients refused", "upsert_clients", "upsert_clients"]
