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
