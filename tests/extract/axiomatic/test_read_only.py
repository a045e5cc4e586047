"""The write-free proof: no method but GET can leave the extractor, by any path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from pipeline.extract.axiomatic import ReadOnlyClient, WriteRefused, extract
from tests.extract.axiomatic.helpers import small

WRITES = ("POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "post")


def test_the_client_exposes_get_as_its_only_request_method(axiomatic: Any) -> None:
    client = ReadOnlyClient(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id)
    public = {name for name in dir(client) if not name.startswith("_") and callable(getattr(client, name))}
    assert public == {"get", "close", "scrub"}


def test_no_write_leaves_through_the_session_or_its_transport(axiomatic: Any) -> None:
    client = ReadOnlyClient(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id)
    session = client._session
    url = axiomatic.base_url + "/api/crm/contacts"
    attempts = [
        lambda: session.post(url, json={}),
        lambda: session.put(url, json={}),
        lambda: session.patch(url, json={}),
        lambda: session.delete(url),
        lambda: session.head(url),
        lambda: session.options(url),
        *[lambda method=method: session.request(method, url) for method in WRITES],
        lambda: session.request(b"POST", url),
        lambda: session.send(session.prepare_request(requests.Request("POST", url, json={}))),
        lambda: session.get_adapter(url).send(requests.Request("DELETE", url).prepare()),
        lambda: session.mount("http://", HTTPAdapter()),
    ]
    for attempt in attempts:
        with pytest.raises(WriteRefused):
            attempt()
    # an adapter slipped in behind the session's back is refused when used
    session.adapters["http://"] = HTTPAdapter()
    with pytest.raises(WriteRefused):
        session.get(url)
    assert axiomatic.request_log() == []  # not one byte reached the server


def test_a_whole_extract_sends_no_write(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic)
    extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, tmp_path / "crm", timelines=True)
    log = axiomatic.request_log()
    assert log and {entry["method"] for entry in log} == {"GET"}
