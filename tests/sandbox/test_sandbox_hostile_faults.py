"""The hostile-server faults at the HTTP level: each commits what it should and misbehaves exactly so."""

from __future__ import annotations

import gzip
import time

import pytest
import requests

from pipeline.sandbox.faults import FaultPlan, FaultSpecError
from pipeline.sandbox.server import RunningSandbox
from tests.sandbox.conftest import Api, client_body


def test_lie_duplicate_ids_commits_both_and_reports_one_id(sandbox: RunningSandbox, api: Api) -> None:
    sandbox.inject("lie", "POST", "/clients/bulk", how="duplicate-ids")
    bodies = [client_body(external_source_id=f"d{n}") for n in range(2)]
    answer = api.post("/clients/bulk", {"clients": bodies}).json()
    assert answer["clients"][0]["id"] == answer["clients"][1]["id"]
    assert len([c for c in sandbox.state()["clients"] if not c["deleted"]]) == 2


def test_leak_key_long_error_straddles_both_cuts(sandbox: RunningSandbox, api: Api) -> None:
    sandbox.inject("leak-key", "POST", "/clients/bulk", how="long-error")
    answer = api.post("/clients/bulk", {"clients": [client_body()]})
    key = sandbox.api_key
    assert answer.status_code == 409 and len(answer.text) == 1000
    assert answer.text.index(key) < 200 < answer.text.index(key) + len(key)
    assert answer.text.rindex(key) < 500 < answer.text.rindex(key) + len(key)


def test_reset_far_and_bomb_headers(sandbox: RunningSandbox, api: Api) -> None:
    sandbox.inject("reset", "GET", "/metadata", how="far")
    headers = api.get("/metadata").headers
    assert headers["X-RateLimit-Remaining"] == "0"
    assert int(headers["X-RateLimit-Reset"]) > time.time() + 9 * 365 * 86400
    sandbox.inject("bomb", "GET", "/metadata")
    raw = requests.get(
        f"{sandbox.base_url}/metadata", headers={"X-API-KEY": sandbox.api_key}, stream=True, timeout=10
    )
    compressed = raw.raw.read(decode_content=False)
    assert raw.headers["Content-Encoding"] == "gzip" and len(compressed) < 200_000
    assert len(gzip.decompress(compressed)) > 64 * 1024 * 1024


def test_unknown_variants_are_refused() -> None:
    plan = FaultPlan()
    with pytest.raises(FaultSpecError):
        plan.add("lie", None, None, 1, None, how="sideways")
    with pytest.raises(FaultSpecError):
        plan.add("drip", None, None, 1, None, how="far")
    plan.add("lie", None, None, 1, None)
    assert plan.decide("POST", "/clients/bulk").how == "duplicate-ids"
