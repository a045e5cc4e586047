"""Run the local Axiomatic: in the foreground (`serve`) or in a background thread for tests.

Why it exists: one place that binds the port (so "port in use" is a clear error, not a uvicorn
traceback) and hands tests a `RunningAxiomatic` whose helpers reach the server's state directly
(the tests run it in their own process, so there are no inspection routes to keep in step).

Must never: bind to anything but what the caller asked for (default 127.0.0.1).
"""

from __future__ import annotations

import errno
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import uvicorn

from pipeline.axiomatic_sandbox.app import Runtime, build_app
from pipeline.axiomatic_sandbox.config import (
    API_KEYS,
    DEMO_ENTITY,
    DEMO_KEY,
    AxiomaticConfig,
    AxiomaticSandboxError,
)

STARTUP_TIMEOUT = 15.0


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise AxiomaticSandboxError(
                f"port {port} on {host} is already in use",
                hint="pick another with --port (0 = any free port), or stop the other process",
            ) from None
        raise AxiomaticSandboxError(
            f"cannot listen on {host}:{port}: {error.strerror}", hint="check --host and --port"
        ) from None
    sock.listen(128)
    return sock


def _uvicorn_server(runtime: Runtime) -> uvicorn.Server:
    config = uvicorn.Config(
        build_app(runtime),
        http="h11",
        loop="asyncio",
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        access_log=False,
        log_level="warning",
    )
    return uvicorn.Server(config)


def _url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


@dataclass
class RunningAxiomatic:
    """A handle on a local Axiomatic started by `start_in_thread`."""

    base_url: str  # "http://127.0.0.1:PORT": the part before /api
    _runtime: Runtime = field(repr=False)
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    api_key: str = field(default=DEMO_KEY, repr=False)  # read:crm, reaches entity_id
    entity_id: str = DEMO_ENTITY
    keys: dict[str, str] = field(default_factory=lambda: {k.name: k.key for k in API_KEYS}, repr=False)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def config(self) -> AxiomaticConfig:
        return self._runtime.config

    def reset(self) -> None:
        """Restore the data (same seed), request log, rate windows, faults and startup settings."""
        self._runtime.reset()

    def configure(self, **changes: Any) -> AxiomaticConfig:
        """Change any setting but host and port; a change to the data knobs regenerates the data."""
        return self._runtime.configure(changes)

    def inject(
        self, kind: str, path: str | None = None, count: int = 1, seconds: float | None = None
    ) -> None:
        """The next `count` requests whose path matches get `kind`: error, ratelimit, latency or badjson."""
        self._runtime.inject(kind, path, count, seconds)

    def request_log(self) -> list[dict[str, Any]]:
        """Every request so far: {time, method, path, query, status, key (its name), fault}."""
        return self._runtime.request_log()

    def dataset(self) -> dict[str, Any]:
        """The truth, as served (a deep copy)."""
        return self._runtime.dataset()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=STARTUP_TIMEOUT)


def start_in_thread(config: AxiomaticConfig) -> RunningAxiomatic:
    """Start uvicorn in a daemon thread and return once it accepts connections."""
    runtime = Runtime(config)
    sock = _bind(config.host, config.port)
    server = _uvicorn_server(runtime)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="axiomatic-sandbox", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise AxiomaticSandboxError("the local Axiomatic did not start")
        time.sleep(0.01)
    return RunningAxiomatic(_url(config.host, sock.getsockname()[1]), runtime, server, thread)


class _Terminated(Exception):
    """SIGTERM arrived: stop like Ctrl-C."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def describe_startup(config: AxiomaticConfig, port: int) -> list[str]:
    url = _url(config.host, port)
    return [
        f"local Axiomatic CRM listening: base URL {url}  (not the real Axiomatic)",
        f"entity {DEMO_ENTITY}  (pass it as --entity / ?entityId=)",
        f"demo read:crm key: export AXIOMATIC_API_KEY={DEMO_KEY}",
        *config.describe(),
        "Ctrl-C stops.",
    ]


def serve(
    config: AxiomaticConfig, announce: Callable[[str], None] = print, log_requests: bool = True
) -> None:
    """Run until Ctrl-C or SIGTERM (blocking). Prints where to connect, and one line per request."""
    runtime = Runtime(config)
    if log_requests:
        runtime.on_entry = lambda entry: announce(_request_line(entry))
    sock = _bind(config.host, config.port)
    server = _uvicorn_server(runtime)
    for line in describe_startup(config, sock.getsockname()[1]):
        announce(line)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
    try:
        server.run(sockets=[sock])
    except (KeyboardInterrupt, _Terminated):
        pass
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        sock.close()
    announce("local Axiomatic stopped")


def _request_line(entry: dict[str, Any]) -> str:
    query = "&".join(f"{name}={value}" for name, value in entry["query"].items() if name != "entityId")
    parts = [f"{entry['method']} {entry['path']}{'?' + query if query else ''} {entry['status']}"]
    if entry.get("fault"):
        parts.append(f"fault={entry['fault']}")
    if entry.get("key"):
        parts.append(f"key={entry['key']}")
    return "  ".join(parts)
