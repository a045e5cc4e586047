"""How a load shows its progress: a live bar on a terminal, plain log lines under cron.

Also the countdown while the client waits for the rate-limit window, so a person watching
knows the tool is waiting on purpose, and for how long.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def make_observer(force_plain: bool = False) -> PlainObserver | RichObserver:
    if force_plain or not sys.stderr.isatty():
        return PlainObserver()
    return RichObserver()


class PlainObserver:
    """One line per event, timestamped: readable in a cron mail or a log file."""

    def __init__(self) -> None:
        self._done = 0  # items of the current step sent so far
        self._total = 0  # items the current step has to send

    def _line(self, text: str) -> None:
        print(f"{datetime.now().strftime('%Y-%m-%d %H:%M:%S')} {text}", file=sys.stderr, flush=True)

    def step(self, name: str, total: int) -> None:
        self._done = 0
        self._total = total
        self._line(f"{name}: {total:,} to send")

    def advance(self, count: int) -> None:
        self._done += count
        if self._total:
            self._line(f"  {self._done:,}/{self._total:,}")

    def note(self, message: str) -> None:
        self._line(message)

    def wait(self, seconds: float, reason: str) -> None:
        until = datetime.fromtimestamp(time.time() + seconds).strftime("%H:%M:%S")
        self._line(f"waiting {seconds:,.0f}s until {until}: {reason}")

    def close(self) -> None:
        pass


class RichObserver:
    """A progress bar per step, and a countdown bar while waiting for the quota window."""

    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        self.task: Any = None

    def step(self, name: str, total: int) -> None:
        self.task = self.progress.add_task(name, total=max(total, 1) if total else 0)

    def advance(self, count: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, count)

    def note(self, message: str) -> None:
        self.progress.console.print(message)

    def wait(self, seconds: float, reason: str) -> None:
        task = self.progress.add_task("waiting for the quota", total=max(seconds, 0.1))
        started = time.monotonic()

        def tick() -> None:
            while (elapsed := time.monotonic() - started) < seconds:
                self.progress.update(task, completed=elapsed)
                time.sleep(0.5)
            self.progress.update(task, completed=seconds, visible=False)

        threading.Thread(target=tick, daemon=True).start()

    def close(self) -> None:
        self.progress.stop()


# ---- extract (a CRM read into a folder) -----------------------------------------------------


def make_extract_observer(force_plain: bool = False) -> PlainExtractObserver | RichExtractObserver:
    if force_plain or not sys.stderr.isatty():
        return PlainExtractObserver()
    return RichExtractObserver()


class PlainExtractObserver:
    """Timestamped lines for cron: each resource's start, its progress every few seconds, each wait."""

    EVERY_SECONDS = 5.0

    def __init__(self) -> None:
        self._last = 0.0
        self._total: int | None = None

    def _line(self, text: str) -> None:
        print(f"{datetime.now().strftime('%Y-%m-%d %H:%M:%S')} {text}", file=sys.stderr, flush=True)

    def begin(self, entity_name: str) -> None:
        self._line(f"extracting the CRM of {entity_name!r}")

    def resource(self, name: str, total: int | None) -> None:
        self._total = total
        self._last = time.monotonic()
        self._line(f"{name}: reading" + (f" {total:,} lists (one per record)" if total is not None else ""))

    def progress(self, name: str, done: int, requests: int) -> None:
        if time.monotonic() - self._last < self.EVERY_SECONDS:
            return
        self._last = time.monotonic()
        what = f"{done:,}/{self._total:,} lists" if self._total is not None else f"{done:,} records"
        self._line(f"  {name}: {what}, {requests:,} requests so far")

    def note(self, message: str) -> None:
        self._line(message)

    def wait(self, seconds: float, reason: str) -> None:
        until = datetime.fromtimestamp(time.time() + seconds).strftime("%H:%M:%S")
        self._line(f"waiting {seconds:,.1f}s until {until}: {reason}")

    def close(self) -> None:
        pass


class RichExtractObserver:
    """A line per resource (records read, requests sent; a bar where the count is known) and a
    countdown while waiting for the read quota, with its reason and the time reading resumes."""

    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.bars = Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=False,
        )
        self.bars.start()
        self.task: Any = None
        self.lists = False

    def begin(self, entity_name: str) -> None:
        self.bars.console.print(f"extracting the CRM of {entity_name!r}")

    def resource(self, name: str, total: int | None) -> None:
        self._finish()
        self.lists = total is not None
        self.task = self.bars.add_task(name, total=total, info="")

    def progress(self, name: str, done: int, requests: int) -> None:
        if self.task is None:
            return
        info = f"{done:,} {'lists' if self.lists else 'records'} · {requests:,} requests"
        self.bars.update(self.task, completed=done if self.lists else 0, info=info)

    def _finish(self) -> None:
        """A finished list of unknown length: its pulsing bar becomes a full one."""
        if self.task is not None and not self.lists:
            self.bars.update(self.task, total=1, completed=1)

    def note(self, message: str) -> None:
        self.bars.console.print(message)

    def wait(self, seconds: float, reason: str) -> None:
        until = datetime.fromtimestamp(time.time() + seconds).strftime("%H:%M:%S")
        task = self.bars.add_task("waiting", total=max(seconds, 0.1), info=f"until {until}: {reason}")
        started = time.monotonic()

        def tick() -> None:
            while (elapsed := time.monotonic() - started) < seconds:
                self.bars.update(task, completed=elapsed)
                time.sleep(0.25)
            self.bars.update(task, completed=seconds, visible=False)

        threading.Thread(target=tick, daemon=True).start()

    def close(self) -> None:
        self._finish()
        self.bars.stop()
