"""What the client does when the network or the server misbehaves: retry what is safe, never resend a create.

Each fault is injected into the real sandbox; the sandbox's request log is the witness of
what was actually sent.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from pipeline.kayse import (
    BulkItemResult,
    KayseClient,
    OutcomeUnknown,
    ServerError,
    TransportError,
)
from tests.kayse.helpers import MakeClient, client_record


def _statuses(sandbox: Any, method: str, path: str) -> list[int | None]:
    return [e["status"] for e in sandbox.request_log() if e["method"] == method and e["path"] == path]


def test_injected_500_is_retried_and_creates_exactly_one_record(
    make_client: MakeClient, sandbox: Any
) -> None:
    waits: list[tuple[float, str]] = []
    kayse = make_client(on_wait=lambda s, r: waits.append((s, r)))
    sandbox.inject("error", "POST", "/clients", count=2)
    created = kayse.clients.create(client_record(1))
    assert _statuses(sandbox, "POST", "/v1/clients") == [500, 500, 201]
    assert [c["id"] for c in sandbox.state()["clients"]] == [created["id"]]
    assert kayse.requests_sent == 3
    assert len(waits) == 2 and all("500" in reason for _, reason in waits)


def test_persistent_500_gives_up_after_the_bounded_retries(make_client: MakeClient, sandbox: Any) -> None:
    kayse = make_client(max_retries=2)
    sandbox.inject("error", "GET", "/metadata", count=10)
    with pytest.raises(ServerError) as caught:
        kayse.metadata.case_types()
    assert caught.value.status == 500
    assert "injected fault" in str(caught.value)  # the API's message is carried
    assert _statuses(sandbox, "GET", "/v1/metadata") == [500, 500, 500]


def test_injected_429_is_waited_out_and_retried(make_client: MakeClient, sandbox: Any) -> None:
    waits: list[tuple[float, str]] = []
    kayse = make_client(on_wait=lambda s, r: waits.append((s, r)))
    sandbox.inject("ratelimit", "POST", "/clients/bulk")
    results = kayse.upsert_clients([client_record(1), client_record(2)])
    assert all(r.ok for r in results)
    assert _statuses(sandbox, "POST", "/v1/clients/bulk") == [429, 200]
    assert len(waits) == 1 and "429" in waits[0][1]
    # Quota was left, so this was a short backoff, not a wait for the hourly reset.
    assert waits[0][0] < 1
    assert len(sandbox.state()["clients"]) == 2


def test_lost_create_raises_outcome_unknown_and_is_never_resent(kayse: KayseClient, sandbox: Any) -> None:
    sandbox.inject("lost", "POST", "/clients")
    with pytest.raises(OutcomeUnknown) as caught:
        kayse.clients.create(client_record(1))
    assert caught.value.maybe_processed
    assert "POST /v1/clients" in str(caught.value)
    assert len(_statuses(sandbox, "POST", "/v1/clients")) == 1
    assert kayse.requests_sent == 1
    # The change was committed even though the answer never came: exactly why we must not resend.
    assert len(sandbox.state()["clients"]) == 1


@pytest.mark.parametrize("kind", ["case_list", "campaign_agent", "sms"])
def test_every_creating_call_is_never_resent(kind: str, kayse: KayseClient, sandbox: Any) -> None:
    if kind == "case_list":
        sandbox.inject("lost", "POST", "/case_lists")
        call: Any = lambda: kayse.case_lists.create("L")  # noqa: E731
    elif kind == "campaign_agent":
        sandbox.inject("lost", "POST", "/agent_builder/campaign_agents")
        call = lambda: kayse.agents.create("A", "v", "hi", "task")  # noqa: E731
    else:
        client_id = kayse.clients.create(client_record(1))["id"]
        case_id = kayse.cases.create(
            {
                "case_number": "1",
                "external_source": "x",
                "external_source_id": "1",
                "status": "open",
                "type": "civil",
                "client_ids": [client_id],
            }
        )["id"]
        sandbox.inject("lost", "POST", "/cases/communication/sms")
        call = lambda: kayse.communication.send_sms(case_id, client_id, "hello")  # noqa: E731
    before = kayse.requests_sent
    with pytest.raises(OutcomeUnknown):
        call()
    assert kayse.requests_sent == before + 1


def test_lost_idempotent_calls_are_retried(kayse: KayseClient, sandbox: Any) -> None:
    client_id = kayse.clients.create(client_record(1))["id"]
    list_id = kayse.case_lists.create("L")["id"]

    sandbox.inject("lost", "GET", f"/clients/{client_id}")
    assert kayse.clients.get(client_id)["id"] == client_id

    sandbox.inject("lost", "PUT", f"/clients/{client_id}")
    assert kayse.clients.update(client_id, client_record(1, city="Nome"))["city"] == "Nome"

    sandbox.inject("lost", "PATCH", f"/case_lists/{list_id}/attach")
    kayse.case_lists.attach(list_id, [])

    # A bulk request where every item has an id only updates: safe to resend.
    sandbox.inject("lost", "POST", "/clients/bulk")
    results = kayse.upsert_clients([client_record(1, id=client_id, city="Kenai")])
    assert results == [BulkItemResult(0, True, client_id, action="updated")]

    assert len(_statuses(sandbox, "GET", f"/v1/clients/{client_id}")) == 2
    assert len(_statuses(sandbox, "PUT", f"/v1/clients/{client_id}")) == 2
    assert len(_statuses(sandbox, "PATCH", f"/v1/case_lists/{list_id}/attach")) == 2
    assert len(_statuses(sandbox, "POST", "/v1/clients/bulk")) == 2
    assert len(sandbox.state()["clients"]) == 1


def test_read_timeout_on_a_create_is_outcome_unknown(make_client: MakeClient, sandbox: Any) -> None:
    kayse = make_client(timeout=(2, 0.2))
    sandbox.inject("latency", "POST", "/clients/bulk", seconds=0.6)
    with pytest.raises(OutcomeUnknown) as caught:
        kayse.upsert_clients([client_record(1), client_record(2), client_record(3)], chunk_size=2)
    assert caught.value.in_flight == (0, 1)
    assert caught.value.not_sent == (2,)
    assert kayse.requests_sent == 1
    _await_logged(sandbox, "POST", "/v1/clients/bulk", 1)
    assert len(sandbox.state()["clients"]) == 2  # the slow create did happen: never resend it blindly


def test_read_timeout_on_a_read_is_retried(make_client: MakeClient, sandbox: Any) -> None:
    kayse = make_client(timeout=(2, 0.2))
    sandbox.inject("latency", "GET", "/metadata/objects", seconds=0.6)
    assert kayse.metadata.objects()
    assert kayse.requests_sent == 2
    _await_logged(sandbox, "GET", "/v1/metadata/objects", 2)


def _await_logged(sandbox: Any, method: str, path: str, count: int) -> None:
    """Let a request the client gave up on finish inside the sandbox, so it cannot leak into the next test."""
    deadline = time.monotonic() + 10
    while len(_statuses(sandbox, method, path)) < count:
        assert time.monotonic() < deadline, "the sandbox never finished the slow request"
        time.sleep(0.05)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_refused_is_retried_then_reported_as_never_sent() -> None:
    waits: list[float] = []
    kayse = KayseClient(
        f"http://127.0.0.1:{_closed_port()}/v1",
        "some-key-123",
        max_retries=2,
        backoff_base=0.01,
        on_wait=lambda s, r: waits.append(s),
    )
    with pytest.raises(TransportError) as caught:
        kayse.clients.create(client_record(1))  # a create, yet safe: it never left this machine
    assert type(caught.value) is TransportError
    assert caught.value.maybe_processed is False
    assert kayse.requests_sent == 0
    assert len(waits) == 2


def test_outcome_unknown_in_a_later_chunk_names_the_items_in_flight(kayse: KayseClient, sandbox: Any) -> None:
    items = [client_record(n) for n in range(5)]
    seen: list[list[BulkItemResult]] = []

    def checkpoint(chunk: list[BulkItemResult]) -> None:
        seen.append(chunk)
        sandbox.inject("lost", "POST", "/clients/bulk")  # the next chunk's answer will be lost

    with pytest.raises(OutcomeUnknown) as caught:
        kayse.upsert_clients(items, chunk_size=2, on_chunk=checkpoint)
    assert [[r.index for r in chunk] for chunk in seen] == [[0, 1]]
    assert all(r.ok for r in seen[0])
    assert caught.value.in_flight == (2, 3)
    assert caught.value.not_sent == (4,)
    assert len(_statuses(sandbox, "POST", "/v1/clients/bulk")) == 2
