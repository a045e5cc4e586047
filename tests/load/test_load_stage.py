"""The load stage on its own: `pipeline.load.execute` against a fake Kayse at its client seam,
with a real ledger. Each test reaches one branch the end-to-end tests reach only by chance:
what a refused item, a lost answer, a stop and a changed case type leave in the run's result and
in the ledger (which is what the next run plans from)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from pipeline.kayse import AuthError, BadRequest, BulkItemResult, OutcomeUnknown, ServerError
from pipeline.ledger import Ledger, Target
from pipeline.load import execute
from pipeline.model import FailedRecord, RunResult, ValidationResult
from pipeline.plan import build_plan
from tests.load.fake_kayse import FakeKayse, Lost
from tests.load.helpers import case_row, client_row, leads, result

TARGET = Target("http://kayse.test/v1", "sha256:000000000000")
TODAY = date(2026, 11, 23)
PI_LIST = "import personal_injury"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "ledger.sqlite") as opened:
        yield opened


def load_once(
    kayse: FakeKayse, ledger: Ledger, data: ValidationResult, *, batch_size: int = 100, campaign: bool = False
) -> RunResult:
    """What `pipeline.run.load` does around the stage: plan from the ledger, open a run, execute."""
    plan = build_plan(data, ledger.snapshot(TARGET), campaign=campaign, batch_size=batch_size, today=TODAY)
    run_id = ledger.start_run(TARGET, "load", {}, plan.total_requests)
    return execute(plan, kayse, ledger, TARGET, run_id)


def test_everything_lands_and_a_rerun_sends_nothing(ledger: Ledger) -> None:
    kayse = FakeKayse()
    first = load_once(kayse, ledger, leads(3), batch_size=2, campaign=True)
    assert first.outcome == "ok" and first.failed == [] and first.uncertain == []
    assert kayse.calls == [
        "upsert_clients",
        "upsert_clients",
        "upsert_cases",
        "upsert_cases",
        "case_lists.create",  # with its first two members
        "case_lists.attach",  # the third
        "campaigns.create",
    ]
    assert first.requests_sent == len(kayse.calls) == first.planned_requests
    assert kayse.list_named(PI_LIST).case_ids == set(kayse.cases)
    assert len(kayse.clients) == 3 and len(kayse.cases) == 3
    second = load_once(kayse, ledger, leads(3), batch_size=2, campaign=True)
    assert second.requests_sent == 0 and len(kayse.calls) == 7


def test_an_item_in_failed_becomes_a_failed_record_and_its_case_is_blocked(ledger: Ledger) -> None:
    kayse = FakeKayse()
    kayse.refuse["C1"] = ("bad request", "mobile: must be an E.164 phone number")
    outcome = load_once(kayse, ledger, leads(3))
    assert outcome.outcome == "rejected"
    assert outcome.failed == [
        FailedRecord(
            "client", "import:C1", "leads.csv", 3, "bad request", "mobile: must be an E.164 phone number"
        )
    ]
    assert outcome.steps["clients"].created == 2 and outcome.steps["clients"].failed == 1
    # the case of the refused contact is never sent: it would have no client to link to
    assert [(r.kind, r.key, r.source_row) for r in outcome.blocked] == [("case", "import:K1", 3)]
    assert outcome.steps["cases"].blocked == 1 and outcome.steps["cases"].sent == 2
    assert "K1" not in {case["external_source_id"] for case in kayse.cases.values()}
    # the refusal is not a lost answer: nothing uncertain, and the next run sends C1 and K1 again
    snapshot = ledger.snapshot(TARGET)
    assert set(snapshot.clients) == {"import:C0", "import:C2"} and ledger.uncertain() == []
    del kayse.refuse["C1"]
    rerun = load_once(kayse, ledger, leads(3))
    assert rerun.outcome == "ok"
    assert rerun.steps["clients"].created == 1 and rerun.steps["cases"].created == 1
    assert len(kayse.clients) == 3 and len(kayse.cases) == 3


def test_a_lost_bulk_answer_makes_its_records_uncertain_in_the_result_and_the_ledger(ledger: Ledger) -> None:
    kayse = FakeKayse()
    kayse.fail_next("upsert_clients", Lost(answered=1))  # the first item was confirmed before the loss
    outcome = load_once(kayse, ledger, leads(3))
    assert outcome.outcome == "rejected"  # the load went on; it did not stop
    assert [r.key for r in outcome.uncertain] == ["import:C1", "import:C2"]
    assert {r.reason for r in outcome.uncertain} == {"the answer to its create was lost"}
    assert outcome.steps["clients"].created == 1 and outcome.steps["clients"].uncertain == 2
    assert [(u.kind, u.source_key) for u in ledger.uncertain()] == [
        ("client", "import:C1"),
        ("client", "import:C2"),
    ]
    assert ledger.snapshot(TARGET).clients["import:C0"].state == "done"
    # cases of an uncertain contact cannot be linked: blocked, and the case of C0 is loaded
    assert {r.key for r in outcome.blocked} == {"import:K1", "import:K2"}
    assert outcome.steps["cases"].created == 1
    # Kayse did create all three; a rerun must not create the two uncertain ones again
    rerun = load_once(kayse, ledger, leads(3))
    assert len(kayse.clients) == 3
    assert rerun.steps["clients"].sent == 0 and {r.key for r in rerun.uncertain} == {"import:C1", "import:C2"}


@pytest.mark.parametrize("landed", [True, False], ids=["create-landed", "create-never-landed"])
def test_a_list_whose_create_answer_was_lost_is_recovered_by_name(ledger: Ledger, landed: bool) -> None:
    kayse = FakeKayse()
    lost = Lost() if landed else OutcomeUnknown("timed out", method="POST", path="/v1/case_lists")
    kayse.fail_next("case_lists.create", lost)
    first = load_once(kayse, ledger, leads(3), campaign=True)
    assert [(r.kind, r.key) for r in first.uncertain] == [("case_list", PI_LIST)]
    assert [(u.kind, u.source_key) for u in ledger.uncertain()] == [("case_list", PI_LIST)]
    # no list id, so no campaign on it yet
    assert [(r.kind, r.reason) for r in first.blocked] == [("campaign", f"its list {PI_LIST!r} is missing")]
    assert kayse.campaign_bodies == {}

    second = load_once(kayse, ledger, leads(3), campaign=True)
    assert second.uncertain == [] and second.blocked == [] and second.outcome == "ok"
    assert "case_lists.search" in kayse.calls
    found = kayse.list_named(PI_LIST)  # exactly one list of that name, either way
    assert found.case_ids == set(kayse.cases)
    list_id = next(i for i, lst in kayse.lists.items() if lst is found)
    assert ledger.snapshot(TARGET).case_lists[PI_LIST].kayse_id == list_id
    assert ledger.uncertain() == []
    assert [c["case_list_id"] for c in kayse.campaign_bodies.values()] == [list_id]
    assert kayse.calls.count("case_lists.create") == (1 if landed else 2)


def with_case_type(case_type_of_k1: str) -> ValidationResult:
    return result(
        [client_row(f"C{i}", i + 2) for i in range(3)],
        [
            case_row(f"K{i}", f"C{i}", i + 2, case_type_of_k1 if i == 1 else "personal_injury")
            for i in range(3)
        ],
    )


def test_a_changed_case_type_detaches_from_the_old_list_and_attaches_to_the_new(ledger: Ledger) -> None:
    kayse = FakeKayse()
    load_once(kayse, ledger, with_case_type("personal_injury"))
    k1 = kayse.case_ids_by_external_id()["K1"]
    assert k1 in kayse.list_named(PI_LIST).case_ids
    before = len(kayse.calls)
    moved = load_once(kayse, ledger, with_case_type("civil"))
    assert moved.outcome == "ok"
    # update the case, create the civil list with it, take it out of the personal-injury list
    assert kayse.calls[before:] == ["upsert_cases", "case_lists.create", "case_lists.detach"]
    assert kayse.list_named("import civil").case_ids == {k1}
    assert k1 not in kayse.list_named(PI_LIST).case_ids and len(kayse.list_named(PI_LIST).case_ids) == 2
    assert moved.steps["membership"].removed == 1 and moved.steps["cases"].updated == 1
    members = ledger.snapshot(TARGET).members
    assert members["import civil"] == {"import:K1"}
    assert members[PI_LIST] == {"import:K0", "import:K2"}


def test_a_refused_detach_is_reported_and_left_for_the_next_run(ledger: Ledger) -> None:
    kayse = FakeKayse()
    load_once(kayse, ledger, with_case_type("personal_injury"))
    kayse.fail_next(
        "case_lists.detach", BadRequest("refused", method="PATCH", path="/v1/case_lists/1/detach")
    )
    outcome = load_once(kayse, ledger, with_case_type("civil"))
    assert [(f.kind, f.key, f.error) for f in outcome.failed] == [("case", "import:K1", "detach-refused")]
    assert outcome.outcome == "rejected" and outcome.steps["membership"].failed == 1
    assert "import:K1" in ledger.snapshot(TARGET).members[PI_LIST]  # still to be taken out
    rerun = load_once(kayse, ledger, with_case_type("civil"))
    assert rerun.outcome == "ok" and rerun.steps["membership"].removed == 1


@pytest.mark.parametrize(
    ("operation", "error"),
    [
        (
            "upsert_cases",
            AuthError("the API key was refused", method="POST", path="/v1/cases/bulk", status=401),
        ),
        ("case_lists.create", ServerError("server error", method="POST", path="/v1/case_lists", status=503)),
        ("case_lists.attach", ServerError("server error", method="PATCH", path="/v1/case_lists/1/attach")),
    ],
    ids=["key-refused-on-cases", "server-error-on-list-create", "server-error-on-attach"],
)
def test_a_kayse_error_stops_the_load_and_a_rerun_continues(
    ledger: Ledger, operation: str, error: Exception
) -> None:
    kayse = FakeKayse()
    kayse.fail_next(operation, error)
    stopped = load_once(kayse, ledger, leads(3), batch_size=2)
    assert stopped.outcome == "stopped"
    assert stopped.stopped_reason is not None and str(error) in stopped.stopped_reason
    assert stopped.requests_sent == len(kayse.calls)
    assert kayse.calls[-1] == operation  # nothing is sent after the error
    assert ledger.uncertain() == []  # refused, not lost: the records were never processed
    assert set(ledger.snapshot(TARGET).clients) == {"import:C0", "import:C1", "import:C2"}
    rerun = load_once(kayse, ledger, leads(3), batch_size=2)
    assert rerun.outcome == "ok" and rerun.steps["clients"].sent == 0
    assert len(kayse.clients) == 3 and len(kayse.cases) == 3 and len(kayse.lists) == 1
    assert kayse.list_named(PI_LIST).case_ids == set(kayse.cases)


def test_an_update_of_a_record_deleted_in_kayse_says_how_to_recreate_it(ledger: Ledger) -> None:
    kayse = FakeKayse()
    load_once(kayse, ledger, leads(2))
    del kayse.cases[kayse.case_ids_by_external_id()["K0"]]  # someone deleted it in the web app
    changed = result(
        [client_row(f"C{i}", i + 2) for i in range(2)],
        [case_row(f"K{i}", f"C{i}", i + 2, status="closed" if i == 0 else "open") for i in range(2)],
    )
    outcome = load_once(kayse, ledger, changed)
    (failed,) = outcome.failed
    assert (failed.kind, failed.key, failed.error) == ("case", "import:K0", "not found")
    assert "kayse-etl resolve case import:K0 --recreate" in failed.message


def test_settled_results_of_a_stopped_bulk_request_are_kept(ledger: Ledger) -> None:
    """A split batch can end in an error after some halves were applied: those ids are recorded."""
    kayse = FakeKayse()
    refused = AuthError("the API key was refused", method="POST", path="/v1/clients/bulk", status=401)
    refused.settled = (BulkItemResult(0, True, 4242, action="created"),)
    kayse.fail_next("upsert_clients", refused)
    outcome = load_once(kayse, ledger, leads(3))
    assert outcome.outcome == "stopped"
    snapshot = ledger.snapshot(TARGET)
    assert snapshot.clients["import:C0"].kayse_id == 4242
    assert set(snapshot.clients) == {"import:C0"} and ledger.uncertain() == []
