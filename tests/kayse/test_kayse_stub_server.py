"""Server behaviours the sandbox does not have, over real HTTP to a tiny stdlib server.

A page that repeats forever, an error body that echoes the key, and a redirect (which must
not be followed, since it could carry the key to another host).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from pipeline.kayse import BadRequest, KayseClient, KayseError

KEY = "stub-key-SECRET-0001"


class StubHandler(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        return

    def _json(self, status: int, body: object) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        StubHandler.hits.append(self.path)
        if self.path.startswith("/v1/case_lists"):
            # Ignores `page`: always the same full page, with a total that never arrives.
            self._json(
                200, {"data": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], "page": 1, "total": 99}
            )
        elif self.path == "/v1/metadata":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.2:9/steal")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            echoed = self.headers.get("X-API-KEY")
            self._json(400, {"error": "bad request", "message": f"key {echoed} cannot do this"})


@pytest.fixture
def stub_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    StubHandler.hits = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_a_repeating_page_stops_the_iteration(stub_url: str) -> None:
    kayse = KayseClient(stub_url, KEY)
    names = [item["name"] for item in kayse.case_lists.iter_all(page_size=2)]
    assert names == ["a", "b"]
    assert len(StubHandler.hits) == 2  # page 2 repeated page 1, so no page 3 was asked for


def test_a_key_echoed_by_the_server_is_redacted(stub_url: str) -> None:
    kayse = KayseClient(stub_url, KEY)
    with pytest.raises(BadRequest) as caught:
        kayse.clients.get(1)
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value.body)
    assert "[redacted]" in str(caught.value)


def test_redirects_are_not_followed(stub_url: str) -> None:
    kayse = KayseClient(stub_url, KEY)
    with pytest.raises(KayseError) as caught:
        kayse.metadata.case_types()
    assert caught.value.status == 302
    assert StubHandler.hits == ["/v1/metadata"]
