"""Authentication (X-API-KEY) and the per-key fixed-window rate limit, over real HTTP."""

from __future__ import annotations

import time

import requests

from pipeline.sandbox import DEMO_KEY
from pipeline.sandbox.server import RunningSandbox
from tests.conftest import SECOND_TEST_KEY
from tests.sandbox.conftest import Api


def test_missing_or_wrong_key_is_401_with_kayse_error_body(sandbox: RunningSandbox) -> None:
    missing = requests.get(sandbox.base_url + "/metadata", timeout=10)
    wrong = Api(sandbox, key="not-a-key").get("/metadata")
    for response in (missing, wrong):
        assert response.status_code == 401
        assert set(response.json()) == {"error", "message"}
    assert "not-a-key" not in wrong.text


def test_header_name_is_case_insensitive_and_every_configured_key_works(sandbox: RunningSandbox) -> None:
    lower = requests.get(sandbox.base_url + "/metadata", headers={"x-api-key": sandbox.api_key}, timeout=10)
    assert lower.status_code == 200
    assert Api(sandbox, key=SECOND_TEST_KEY).get("/metadata").status_code == 200


def test_demo_key_is_refused_when_keys_are_configured(sandbox: RunningSandbox) -> None:
    assert Api(sandbox, key=DEMO_KEY).get("/metadata").status_code == 401


def test_rate_headers_on_every_response_count_down_with_absolute_reset(api: Api) -> None:
    first = api.get("/metadata")
    second = api.get("/clients/999999")  # a 404 counts too: the server did the work
    assert second.status_code == 404
    assert first.headers["X-RateLimit-Limit"] == "500"
    assert int(first.headers["X-RateLimit-Remaining"]) == 499
    assert int(second.headers["X-RateLimit-Remaining"]) == 498
    reset = int(first.headers["X-RateLimit-Reset"])
    assert reset > 10**9 and time.time() < reset <= time.time() + 3601  # an absolute epoch
    assert second.headers["X-RateLimit-Reset"] == first.headers["X-RateLimit-Reset"]  # fixed window


def test_429_when_spent_is_per_key_uncounted_and_recovers_after_the_window(
    sandbox: RunningSandbox, api: Api
) -> None:
    sandbox.configure(rate_limit=2, rate_window=1)
    assert api.get("/metadata").status_code == 200
    assert api.get("/metadata").status_code == 200
    refused = api.get("/metadata")
    assert refused.status_code == 429
    assert set(refused.json()) == {"error", "message"}
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert api.get("/metadata").status_code == 429  # still spent: 429s do not open a new window
    assert Api(sandbox, key=SECOND_TEST_KEY).get("/metadata").status_code == 200  # per key
    assert api.post("/clients", {"first_name": "x"}).status_code == 429  # nothing applied
    assert sandbox.state()["clients"] == []
    while time.time() < int(refused.headers["X-RateLimit-Reset"]):
        time.sleep(0.05)
    recovered = api.get("/metadata")
    assert recovered.status_code == 200
    assert recovered.headers["X-RateLimit-Remaining"] == "1"


def test_401s_do_not_spend_the_quota(sandbox: RunningSandbox, api: Api) -> None:
    sandbox.configure(rate_limit=1)
    for _ in range(3):
        assert Api(sandbox, key="wrong").get("/metadata").status_code == 401
    assert api.get("/metadata").status_code == 200


def test_inspection_routes_need_no_key_and_are_not_rate_limited(sandbox: RunningSandbox, api: Api) -> None:
    sandbox.configure(rate_limit=1)
    api.get("/metadata")
    for _ in range(3):
        assert requests.get(sandbox.root_url + "/_sandbox/health", timeout=10).status_code == 200
    log = sandbox.request_log()
    assert [entry["path"] for entry in log] == ["/v1/metadata"]  # inspection is not logged as API use


def test_request_log_records_fingerprints_never_keys(sandbox: RunningSandbox, api: Api) -> None:
    api.post("/clients/bulk", {"clients": [{}, {}, {}]})
    Api(sandbox, key="wrong-key-value").get("/metadata")
    log = sandbox.request_log()
    assert [(e["method"], e["path"], e["status"], e["items"]) for e in log] == [
        ("POST", "/v1/clients/bulk", 200, 3),
        ("GET", "/v1/metadata", 401, None),
    ]
    text = repr(log) + repr(sandbox) + repr(sandbox.state())
    assert sandbox.api_key not in text and "wrong-key-value" not in text
    assert log[0]["key"].startswith("sha256:")
