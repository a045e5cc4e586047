"""Fault injection: 500 without effect, extra 429, latency, and the lost response (committed, no answer)."""

from __future__ import annotations

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from pipeline.sandbox.faults import FaultSpec, FaultSpecError, parse_fault_spec
from pipeline.sandbox.server import RunningSandbox
from tests.sandbox.conftest import Api, client_body


def live_clients(sandbox: RunningSandbox) -> list[str]:
    return [c["external_source_id"] for c in sandbox.state()["clients"] if not c["deleted"]]


def test_error_fault_is_a_500_that_changes_nothing(sandbox: RunningSandbox, api: Api) -> None:
    sandbox.inject("error", method="POST", path="/clients/bulk")
    failed = api.post("/clients/bulk", {"clients": [client_body(external_source_id="e1")]})
    assert failed.status_code == 500 and set(failed.json()) == {"error", "message"}
    assert live_clients(sandbox) == []
    retried = api.post("/clients/bulk", {"clients": [client_body(external_source_id="e1")]})
    assert retried.status_code == 200
    assert live_clients(sandbox) == ["e1"]
    assert [e["fault"] for e in sandbox.request_log()] == ["error", None]


def test_ratelimit_fault_is_an_extra_429_that_changes_nothing(sandbox: RunningSandbox, api: Api) -> None:
    sandbox.inject("ratelimit", count=2)
    first = api.post("/clients", client_body())
    second = api.get("/metadata")  # one-shot rules without a method match any request
    assert (first.status_code, second.status_code) == (429, 429)
    assert "X-RateLimit-Reset" in first.headers
    assert live_clients(sandbox) == []
    assert api.post("/clients", client_body()).status_code == 201


def test_lost_fault_commits_then_drops_the_connection(sandbox: RunningSandbox, api: Api) -> None:
    sandbox.inject("lost", method="POST", path="/clients/*")
    with pytest.raises(requests.ConnectionError):
        api.post("/clients/bulk", {"clients": [client_body(external_source_id="lost-1")]})
    assert live_clients(sandbox) == ["lost-1"]  # the change was applied
    (entry,) = sandbox.request_log()
    assert entry["fault"] == "lost" and entry["status"] == 200
    assert api.get("/metadata").status_code == 200  # the server keeps serving


def test_lost_fault_on_a_single_create_and_path_with_v1_prefix(sandbox: RunningSandbox, api: Api) -> None:
    sandbox.inject("lost", path="/v1/clients")
    with pytest.raises(requests.ConnectionError):
        api.post("/clients", client_body(external_source_id="lost-2"))
    assert live_clients(sandbox) == ["lost-2"]


def test_latency_fault_delays_but_answers(sandbox: RunningSandbox, api: Api) -> None:
    sandbox.inject("latency", method="POST", seconds=0.05)
    assert api.post("/clients", client_body()).status_code == 201
    assert sandbox.request_log()[0]["fault"] == "latency"


def test_random_faults_hit_writes_only_and_reset_clears_them(sandbox: RunningSandbox, api: Api) -> None:
    sandbox.configure(faults="error=1,seed=3")
    assert api.get("/metadata").status_code == 200
    assert api.post("/clients", client_body()).status_code == 500
    assert live_clients(sandbox) == []
    sandbox.reset()
    assert api.post("/clients", client_body()).status_code == 201


def test_seeded_random_faults_repeat_exactly(sandbox: RunningSandbox, api: Api) -> None:
    def run() -> list[int]:
        sandbox.reset()
        sandbox.configure(faults="error=0.3,ratelimit=0.3,seed=7")
        return [api.post("/clients", client_body()).status_code for _ in range(12)]

    first = run()
    assert first == run()
    assert {500, 429, 201} <= set(first)


def test_bad_fault_settings_are_refused(sandbox: RunningSandbox) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        sandbox.configure(faults="boom=1")
    with pytest.raises(ValueError, match="unknown fault kind"):
        sandbox.inject("boom")
    with pytest.raises(ValueError, match="cannot change"):
        sandbox.configure(api_keys=["x"])


def test_fault_spec_parsing() -> None:
    spec = parse_fault_spec("error=0.05, ratelimit=0.02,latency=0.2,lost=0.01,seed=7")
    assert spec == FaultSpec(error=0.05, ratelimit=0.02, latency=0.2, lost=0.01, seed=7)
    assert parse_fault_spec(None) == parse_fault_spec("") == parse_fault_spec("none") == FaultSpec()
    for bad in ("error", "error=x", "error=1.5", "error=0.6,lost=0.6", "latency=-1", "seed=a", "x=1"):
        with pytest.raises(FaultSpecError):
            parse_fault_spec(bad)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "error": st.floats(0, 0.33),
            "ratelimit": st.floats(0, 0.33),
            "lost": st.floats(0, 0.33),
            "latency": st.floats(0, 5),
            "seed": st.integers(0, 2**31),
        },
    )
)
def test_fault_spec_round_trips(values: dict[str, float]) -> None:
    spec = FaultSpec(**values)  # type: ignore[arg-type]
    parts = [f"{k}={v!r}" for k, v in values.items()]
    assert parse_fault_spec(",".join(parts)) == spec
