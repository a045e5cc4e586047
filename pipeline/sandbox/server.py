"""Run the sandbox: blocking for the CLI (`serve`), or in a background thread for tests.

Why it exists: one place that binds the port (so "port in use" is a clear `SandboxError`, not a
uvicorn traceback), pins uvicorn's h11 protocol (the "lost" fault depends on it), and gives
callers a `RunningSandbox` handle whose helpers talk to the inspection routes over HTTP — so
they work the same for a sandbox in this process, in a subprocess or on another terminal.

Must never: print or log an API key other than the documented demo key (fingerprints only), or
bind to anything but what the caller asked for (default 127.0.0.1).
"""

from __future__ import annotations

import errno
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import requests
import uvicorn

from pipeline.sandbox.app import SandboxRuntime, build_app
from pipeline.sandbox.config import DEMO_KEY, ConfigError, SandboxConfig
from pipeline.sandbox.errors import SandboxError
from pipeline.sandbox.faults import parse_fault_spec
from pipeline.sandbox.gate import key_fingerprint

__all__ = ["DEMO_KEY", "RunningSandbox", "SandboxConfig", "SandboxError", "serve", "start_in_thread"]

INSPECTION_TIMEOUT = 10.0
STARTUP_TIMEOUT = 15.0


def _checked(config: SandboxConfig) -> SandboxConfig:
    try:
        return config.checked()
    except ConfigError as error:
        raise SandboxError(f"sandbox: {error}", hint="see `kayse-etl sandbox --help`") from None


def _runtime(config: SandboxConfig) -> SandboxRuntime:
    try:
        return SandboxRuntime(config)
    except sqlite3.Error as error:
        raise SandboxError(
            f"cannot open the sandbox database {config.db_path}: {error}",
            hint="give --db a writable path to a new file or to a file an earlier sandbox wrote",
        ) from None


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise SandboxError(
                f"port {port} on {host} is already in use",
                hint="pick another with --port (or --port 0 for any free port), or stop the other process",
            ) from None
        raise SandboxError(
            f"cannot listen on {host}:{port}: {error.strerror}", hint="check --host and --port"
        ) from None
    sock.listen(128)
    return sock


def _uvicorn_server(runtime: SandboxRuntime) -> uvicorn.Server:
    config = uvicorn.Config(
        build_app(runtime),
        http="h11",  # the "lost" fault aborts h11's transport; see gate.drop_connection
        loop="asyncio",
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        access_log=False,
        log_level="warning",
    )
    return uvicorn.Server(config)


@dataclass
class RunningSandbox:
    """A handle on a running sandbox. Helpers use the sandbox-only `/_sandbox/` routes over HTTP."""

    base_url: str  # "http://127.0.0.1:PORT/v1": what KAYSE_BASE_URL would be
    api_key: str = field(repr=False)
    _server: uvicorn.Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _runtime: SandboxRuntime | None = field(default=None, repr=False)

    @classmethod
    def attach(cls, base_url: str, api_key: str = DEMO_KEY) -> RunningSandbox:
        """A handle on a sandbox started elsewhere (e.g. a subprocess); checks it answers."""
        handle = cls(base_url=base_url.rstrip("/"), api_key=api_key)
        handle.health()
        return handle

    @property
    def root_url(self) -> str:
        return self.base_url.removesuffix("/v1")

    @property
    def port(self) -> int:
        return int(self.root_url.rsplit(":", 1)[1])

    def _call(self, method: str, route: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.request(
            method, f"{self.root_url}/_sandbox/{route}", json=body, timeout=INSPECTION_TIMEOUT
        )
        if response.status_code >= 400:
            raise ValueError(f"sandbox {route}: {response.json().get('message', response.text)}")
        return response.json()

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "health")
        return result

    def reset(self) -> None:
        """Clear state, request log, rate windows and faults; restore the startup settings."""
        self._call("POST", "reset")

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change rate_limit, rate_window, bulk_max, bulk_mode, faults or strict while running."""
        result: dict[str, Any] = self._call("POST", "config", changes)
        return result

    def inject(
        self,
        kind: str,
        method: str | None = None,
        path: str | None = None,
        count: int = 1,
        seconds: float | None = None,
        how: str | None = None,
    ) -> None:
        """The next `count` requests matching method and path (under /v1) get fault `kind`.

        `how` picks the variant of "lie", "leak-key" and "reset" (see `faults.FAULT_VARIANTS`);
        `seconds` is the latency, or for "drip" the pause between two bytes of the answer.
        """
        self._call(
            "POST",
            "faults",
            {"kind": kind, "method": method, "path": path, "count": count, "seconds": seconds, "how": how},
        )

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "state")
        return result

    def request_log(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "requests")["requests"]
        return result

    def opt_out(self, client_id: int, *, sms: bool | None = None, email: bool | None = None) -> None:
        """Set a client's SMS and/or email opt-out, as a STOP reply or an unsubscribe would."""
        self._call("POST", "opt_outs", {"client_id": client_id, "sms": sms, "email": email})

    def messages(self) -> list[dict[str, Any]]:
        """Every message Kayse scheduled, in arrival order (refused ones: `refused_messages`)."""
        result: list[dict[str, Any]] = self._call("GET", "messages")["messages"]
        return result

    def refused_messages(self) -> list[dict[str, Any]]:
        """Message requests the sandbox refused (opted-out client, no mobile or email)."""
        result: list[dict[str, Any]] = self._call("GET", "messages")["refused"]
        return result

    def stop(self) -> None:
        """Stop a sandbox started by `start_in_thread` (a no-op for an attached one)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=STARTUP_TIMEOUT)
        if self._runtime is not None:
            self._runtime.store.close()
            self._runtime = None


def start_in_thread(config: SandboxConfig) -> RunningSandbox:
    """Start uvicorn in a daemon thread and return once it accepts connections."""
    config = _checked(config)
    runtime = _runtime(config)
    sock = _bind(config.host, config.port)
    server = _uvicorn_server(runtime)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="kayse-sandbox", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the sandbox server did not start")
        time.sleep(0.01)
    port = sock.getsockname()[1]
    host = f"[{config.host}]" if ":" in config.host else config.host
    return RunningSandbox(
        base_url=f"http://{host}:{port}/v1",
        api_key=config.api_keys[0] if config.api_keys else DEMO_KEY,
        _server=server,
        _thread=thread,
        _runtime=runtime,
    )


class _Terminated(Exception):
    """SIGTERM arrived: stop like Ctrl-C."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def describe_startup(config: SandboxConfig, port: int) -> list[str]:
    host = f"[{config.host}]" if ":" in config.host else config.host
    lines = [f"Kayse sandbox listening: base URL http://{host}:{port}/v1  (not the real Kayse API)"]
    if config.api_keys:
        fingerprints = ", ".join(key_fingerprint(k) or "" for k in config.api_keys)
        lines.append(f"accepted keys: {len(config.api_keys)} given with --api-key ({fingerprints})")
    else:
        lines.append(f"accepted key: the demo key {DEMO_KEY!r} (export KAYSE_API_KEY={DEMO_KEY})")
    lines.append(
        f"rate limit {config.rate_limit} per {config.rate_window:g}s per key; bulk max {config.bulk_max} "
        f"({config.bulk_mode}); faults: {parse_fault_spec(config.faults)}; strict: {'on' if config.strict else 'off'}"
    )
    lines.append(f"state: {config.db_path or 'in memory (lost on exit; use --db PATH to keep it)'}")
    lines.append(f"inspect: http://{host}:{port}/_sandbox/state (sandbox-only). Ctrl-C stops.")
    return lines


def serve(config: SandboxConfig, announce: Callable[[str], None] = print, log_requests: bool = True) -> None:
    """Run until Ctrl-C or SIGTERM (blocking). Prints where to connect, and one line per request."""
    config = _checked(config)
    runtime = _runtime(config)
    if log_requests:
        runtime.log.on_entry = lambda entry: announce(_request_line(entry))
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
        runtime.store.close()
    announce("sandbox stopped")


def _request_line(entry: dict[str, Any]) -> str:
    parts = [f"{entry['method']} {entry['path']} {entry['status'] if entry['status'] is not None else '-'}"]
    if entry.get("items") is not None:
        parts.append(f"items={entry['items']}")
    if entry.get("fault"):
        parts.append(f"fault={entry['fault']}")
    if entry.get("key"):
        parts.append(f"key={entry['key']}")
    return "  ".join(parts)
