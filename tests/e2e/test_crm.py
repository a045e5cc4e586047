"""`crm …` end to end, over real HTTP against the sandbox: pull is exact, a bad file is refused
before any request, push shows the difference and sends nothing without --yes, one request with
only the changes with --yes, none when nothing changed; outcome types and integrations as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.conftest import SANDBOX_TEST_KEY
from tests.e2e.test_load import cli_run

HELD = [
    {"kayse_field": "case_status", "crm_field": "statusid", "direction": "bidirectional"},
    {"kayse_field": "mobile", "crm_field": "cell_phone", "direction": "inbound"},
    {"kayse_field": "outcome", "crm_field": "disposition", "direction": "outbound"},
]


def seed(sandbox: Any) -> None:
    response = requests.post(
        f"{sandbox.base_url}/crm_mappings/fields",
        json={"mappings": HELD},
        headers={"X-API-KEY": SANDBOX_TEST_KEY},
        timeout=10,
    )
    assert response.ok


def api_requests(sandbox: Any, since: int) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in sandbox.request_log()[since:] if r["path"].startswith("/v1")]


def test_pull_writes_kayses_mappings_exactly_0600(sandbox: Any, tmp_path: Path) -> None:
    seed(sandbox)
    out = tmp_path / "crm" / "mappings.yaml"
    done = cli_run(sandbox, "crm", "fields", "pull", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.parent.stat().st_mode & 0o777 == 0o700  # the folder it made is private too
    assert [p.name for p in out.parent.iterdir()] == ["mappings.yaml"]  # no temporary file left
    current = requests.get(
        f"{sandbox.base_url}/crm_mappings/fields", headers={"X-API-KEY": SANDBOX_TEST_KEY}, timeout=10
    ).json()
    assert yaml.safe_load(out.read_text(encoding="utf-8")) == current
    assert out.stat().st_mode & 0o777 == 0o600
    as_json = cli_run(sandbox, "crm", "fields", "pull", "--out", str(out), "--format", "json")
    assert json.loads(as_json.stdout)["mappings"] == current["mappings"]
    # pull → push unchanged: one GET, no POST
    before = len(sandbox.request_log())
    push = cli_run(sandbox, "crm", "fields", "push", str(out), "--yes")
    assert push.returncode == 0, push.stderr
    assert api_requests(sandbox, before) == [("GET", "/v1/crm_mappings/fields")]
    assert "nothing to send" in push.stdout


def test_a_bad_file_lists_every_problem_and_sends_nothing(sandbox: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "mappings:\n"
        "  - {kayse_field: case_status, crm_field: statusid, direction: sideways}\n"
        "  - {kayse_field: '', crm_field: x}\n"
        "  - {kayse_field: case_status, crm_field: other}\n"
        "  - just text\n",
        encoding="utf-8",
    )
    done = cli_run(sandbox, "crm", "fields", "push", str(path), "--yes")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    for words in ("sideways", "mapping 2: kayse_field is empty", "already mapped by mapping 1", "mapping 4"):
        assert words in done.stderr, words
    assert sandbox.request_log() == []
    not_a_list = tmp_path / "flat.yaml"
    not_a_list.write_text("case_status: statusid\n", encoding="utf-8")
    assert cli_run(sandbox, "crm", "fields", "push", str(not_a_list)).returncode == 2
    assert sandbox.request_log() == []


def test_push_shows_the_difference_and_sends_only_the_changes_with_yes(sandbox: Any, tmp_path: Path) -> None:
    seed(sandbox)
    path = tmp_path / "mappings.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "mappings": [
                    {"kayse_field": "case_status", "crm_field": "statusid", "direction": "bidirectional"},
                    {"kayse_field": "mobile", "crm_field": "mobile_phone", "direction": "inbound"},
                    {"kayse_field": "email", "crm_field": "email_address"},
                ]
            }
        ),
        encoding="utf-8",
    )
    before = len(sandbox.request_log())
    shown = cli_run(sandbox, "crm", "fields", "push", str(path), "--format", "json")
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    assert [m["kayse_field"] for m in body["added"]] == ["email"]
    assert [c["file"]["crm_field"] for c in body["changed"]] == ["mobile_phone"]
    assert [m["kayse_field"] for m in body["unchanged"]] == ["case_status"]
    assert [m["kayse_field"] for m in body["only_in_kayse"]] == ["outcome"]
    assert body["sent"] is False
    assert api_requests(sandbox, before) == [("GET", "/v1/crm_mappings/fields")]
    text = cli_run(sandbox, "crm", "fields", "push", str(path))
    assert "cannot delete" in text.stdout and "--yes" in text.stdout

    before = len(sandbox.request_log())
    sent = cli_run(sandbox, "crm", "fields", "push", str(path), "--yes", "--format", "json")
    assert sent.returncode == 0, sent.stderr
    result = json.loads(sent.stdout)
    assert result["sent"] is True and result["updated"] == 2  # only the added and the changed one
    assert api_requests(sandbox, before) == [
        ("GET", "/v1/crm_mappings/fields"),
        ("POST", "/v1/crm_mappings/fields"),
    ]
    state = {m["kayse_field"]: m for m in sandbox.state()["crm_mappings"]}
    assert state["mobile"]["crm_field"] == "mobile_phone" and state["email"]["direction"] == "bidirectional"
    assert state["outcome"]["crm_field"] == "disposition"  # no delete in the API: left as it was

    before = len(sandbox.request_log())
    again = cli_run(sandbox, "crm", "fields", "push", str(path), "--yes")
    assert again.returncode == 0
    assert api_requests(sandbox, before) == [("GET", "/v1/crm_mappings/fields")]


def test_integrations_and_outcome_types_as_json(sandbox: Any) -> None:
    integrations = cli_run(sandbox, "crm", "integrations", "--format", "json")
    assert integrations.returncode == 0, integrations.stderr
    assert json.loads(integrations.stdout)["integrations"][0]["type"] == "smartadvocate"
    outcome_types = cli_run(sandbox, "crm", "outcome-types", "--format", "json")
    items = json.loads(outcome_types.stdout)["outcome_types"]
    assert {"qualified", "not_interested", "callback"} == {i["id"] for i in items}
    assert all(set(i) == {"id", "label", "description"} for i in items)
    text = cli_run(sandbox, "crm", "outcome-types")
    assert "Qualified Lead" in text.stdout
    assert "smartadvocate: enabled" in cli_run(sandbox, "crm", "integrations").stdout
