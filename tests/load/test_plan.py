"""The plan decides what to send: only new and changed records, packed into as few requests as
the API allows, with nothing sent for what is uncertain."""

from __future__ import annotations

from datetime import date

from pipeline.model import LedgerEntry, LedgerSnapshot, payload_hash
from pipeline.plan import build_plan
from tests.load.helpers import SPEC, case_row, client_row, leads, result

TODAY = date(2026, 11, 23)


def empty() -> LedgerSnapshot:
    return LedgerSnapshot(target="t")


def test_first_load_creates_everything_in_the_fewest_requests() -> None:
    plan = build_plan(leads(250), empty(), batch_size=100, today=TODAY)
    assert plan.count(plan.clients, True) == 250
    assert plan.count(plan.cases, True) == 250
    # 3 client batches + 3 case batches + 1 list create (with the first 100 members) + 2 attaches
    assert plan.requests == {"clients": 3, "cases": 3, "case_lists": 1, "membership": 2, "campaigns": 0}
    assert plan.total_requests == 9


def test_campaign_only_when_asked() -> None:
    assert build_plan(leads(3), empty(), today=TODAY).campaigns == ()
    plan = build_plan(leads(3), empty(), campaign=True, today=TODAY)
    assert [op.key for op in plan.campaigns] == ["outreach personal_injury"]
    run = plan.campaigns[0].payload["runs"][0]
    assert run == {"start_date": "2026-11-23", "end_date": "2026-12-07", "messaging_only": True}
    assert plan.requests["campaigns"] == 1


def test_lists_are_per_case_type() -> None:
    data = result(
        [client_row("C1", 2), client_row("C2", 3)],
        [case_row("K1", "C1", 2, "personal_injury"), case_row("K2", "C2", 3, "civil")],
    )
    plan = build_plan(data, empty(), campaign=True, today=TODAY)
    assert {(op.key, op.case_type, op.new_case_keys) for op in plan.case_lists} == {
        ("import personal_injury", "personal_injury", ("import:K1",)),
        ("import civil", "civil", ("import:K2",)),
    }
    assert len(plan.campaigns) == 2


def test_payload_is_typed_and_leaves_out_empty_fields() -> None:
    plan = build_plan(leads(1), empty(), today=TODAY)
    client = plan.clients[0].payload
    assert client["postal_code"] == "02134"
    assert "email" not in client  # None is left out, never sent as null or ""
    assert client["external_source"] == "import"
    case = plan.cases[0].payload
    assert "description" not in case
    assert case["external_source_data"] == {"incident_date": "2024-05-01"}
    assert "client_ids" not in case  # added at load, once the client's id is known
    assert not any(value == "" for value in {**client, **case}.values())


def snapshot_after_first_load(data_plan_clients: int = 3) -> LedgerSnapshot:
    """What the ledger holds after loading leads(3) completely."""
    plan = build_plan(leads(data_plan_clients), empty(), today=TODAY)
    clients = {
        op.key: LedgerEntry(100 + i, payload_hash(op.payload), "done") for i, op in enumerate(plan.clients)
    }
    cases = {}
    for i, op in enumerate(plan.cases):
        client_id = clients[op.client_key or ""].kayse_id
        cases[op.key] = LedgerEntry(200 + i, payload_hash({**op.payload, "client_ids": [client_id]}), "done")
    lists = {"import personal_injury": LedgerEntry(7, "h", "done")}
    members = {"import personal_injury": frozenset(cases)}
    return LedgerSnapshot("t", clients, cases, lists, {}, members)


def test_rerun_of_the_same_data_sends_nothing() -> None:
    plan = build_plan(leads(3), snapshot_after_first_load(), today=TODAY)
    assert plan.clients == () and plan.cases == () and plan.case_lists == ()
    assert plan.unchanged == {"client": 3, "case": 3}
    assert plan.total_requests == 0


def test_a_changed_phone_is_one_full_update() -> None:
    data = leads(3)
    changed = result(
        [client_row("C0", 2, mobile="+13125550199"), client_row("C1", 3), client_row("C2", 4)],
        [case_row(f"K{i}", f"C{i}", i + 2) for i in range(3)],
    )
    del data
    plan = build_plan(changed, snapshot_after_first_load(), today=TODAY)
    assert [(op.key, op.kayse_id) for op in plan.clients] == [("import:C0", 100)]
    assert plan.clients[0].payload["first_name"] == "Ana"  # the complete record, not a diff
    assert plan.cases == ()
    assert plan.total_requests == 1


def test_a_changed_case_status_is_sent_as_a_complete_record() -> None:
    changed = result(
        [client_row(f"C{i}", i + 2) for i in range(3)],
        [case_row("K0", "C0", 2, status="closed"), case_row("K1", "C1", 3), case_row("K2", "C2", 4)],
    )
    plan = build_plan(changed, snapshot_after_first_load(), today=TODAY)
    assert len(plan.cases) == 1
    op = plan.cases[0]
    assert op.kayse_id == 200 and op.client_id == 100
    assert op.payload["status"] == "closed" and op.payload["case_number"] == "N-K0" and op.payload["type"]


def test_uncertain_records_are_held_back_and_their_cases_blocked() -> None:
    snap = LedgerSnapshot("t", clients={"import:C0": LedgerEntry(None, None, "uncertain")})
    plan = build_plan(leads(2), snap, today=TODAY)
    assert [r.key for r in plan.uncertain] == ["import:C0"]
    assert [r.key for r in plan.blocked] == ["import:K0"]
    assert [op.key for op in plan.clients] == ["import:C1"]
    assert [op.key for op in plan.cases] == ["import:K1"]


def test_lost_list_create_is_recovered_by_search_not_recreated() -> None:
    snap = snapshot_after_first_load()
    lists = {"import personal_injury": LedgerEntry(None, None, "uncertain")}
    plan = build_plan(leads(3), LedgerSnapshot("t", snap.clients, snap.cases, lists, {}, {}), today=TODAY)
    (op,) = plan.case_lists
    assert op.recover and op.kayse_id is None
    assert plan.requests["case_lists"] == 1  # the name search
    assert plan.requests["membership"] == 1  # then one attach for the 3 members


def test_new_cases_are_attached_to_an_existing_list_only() -> None:
    snap = snapshot_after_first_load()
    bigger = leads(5)
    plan = build_plan(bigger, snap, today=TODAY)
    (op,) = plan.case_lists
    assert op.kayse_id == 7 and not op.recover
    assert op.new_case_keys == ("import:K3", "import:K4")
    assert plan.requests == {"clients": 1, "cases": 1, "case_lists": 0, "membership": 1, "campaigns": 0}


def test_spec_without_lists_plans_no_lists() -> None:
    from dataclasses import replace

    data = leads(2)
    data = type(data)(**{**data.__dict__, "mapping": replace(SPEC, case_list=None)})
    plan = build_plan(data, empty(), campaign=True, today=TODAY)
    assert plan.case_lists == () and plan.campaigns == ()


def test_a_case_whose_type_changed_moves_to_its_new_list() -> None:
    snap = snapshot_after_first_load()  # K0..K2 in "import personal_injury" (list id 7)
    changed = result(
        [client_row(f"C{i}", i + 2) for i in range(3)],
        [case_row("K0", "C0", 2, "civil"), case_row("K1", "C1", 3), case_row("K2", "C2", 4)],
    )
    plan = build_plan(changed, snap, today=TODAY)
    ops = {op.key: op for op in plan.case_lists}
    assert ops["import personal_injury"].moved_case_keys == ("import:K0",)
    assert ops["import personal_injury"].new_case_keys == ()
    assert ops["import civil"].new_case_keys == ("import:K0",) and ops["import civil"].kayse_id is None
    # the case itself (one update), the new list (create with its member), one detach
    assert plan.requests == {"clients": 0, "cases": 1, "case_lists": 1, "membership": 1, "campaigns": 0}


def test_cases_absent_from_this_input_stay_in_their_lists() -> None:
    snap = snapshot_after_first_load()
    only_one = result([client_row("C0", 2)], [case_row("K0", "C0", 2)])
    plan = build_plan(only_one, snap, today=TODAY)
    assert plan.case_lists == () and plan.total_requests == 0
