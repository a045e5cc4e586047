"""Stopping a long command cleanly on Ctrl-C or SIGTERM (what cron, systemd and docker send).

A load killed in the middle of a request cannot know whether Kayse applied it, so those records
become uncertain and someone has to look each one up. Killed while it merely waits for the
rate-limit window, nothing is in flight and nothing should become uncertain. So the first
signal only asks to stop: a wait ends at once (raising `StopRequested`, a "never sent" error,
from inside the client's wait), a request in flight is finished and its answer recorded, and
the command stops before its next request, the run recorded as stopped (exit 3). A second
signal forces: `ForcedStop` (a KeyboardInterrupt) unwinds at once, and the intent of a request
in flight stays open, so its records are uncertain — which is then the truth.

Used by `pipeline.run`, which hands `SignalGuard.sleep` to the client as its sleep and
`SignalGuard.check` to the loader (and the notifier) to call before each request.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

from pipeline.kayse import KayseError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequested(KayseError):
    """The operator asked to stop; raised before a request is sent, so none of it was applied."""

    retryable = True
    default_hint = "nothing is lost: run the same command again to continue"


class ForcedStop(KeyboardInterrupt):
    """A second signal: stop now, even in the middle of a request."""


class SignalGuard:
    """While active, SIGINT and SIGTERM ask for a stop instead of killing the process at once.

    Outside the main thread (where Python cannot install handlers) it installs none and
    `reason` stays None: the caller's own signal handling applies.
    """

    def __init__(self, announce: bool = True) -> None:
        self._stop = threading.Event()
        self._signal: str | None = None
        self._announce = announce
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self._stop.is_set():
            raise ForcedStop(f"{name} again: stopped at once")
        self._signal = name
        self._stop.set()
        if self._announce:
            print(
                f"{name}: stopping after the request in flight (send it again to stop at once)",
                file=sys.stderr,
                flush=True,
            )

    @property
    def reason(self) -> str | None:
        """Why to stop ("stopped by SIGINT"), or None while no stop was asked for."""
        return f"stopped by {self._signal}" if self._stop.is_set() else None

    def check(self) -> None:
        """Raise `StopRequested` when a stop was asked for: call it before each request."""
        if self._stop.is_set():
            raise StopRequested(f"{self.reason}; the rest is sent by the next run")

    def sleep(self, seconds: float) -> None:
        """A wait (the client's rate-limit or retry wait) that a stop request ends at once."""
        if self._stop.wait(max(0.0, seconds)):
            raise StopRequested(f"{self.reason} while waiting; the rest is sent by the next run")
