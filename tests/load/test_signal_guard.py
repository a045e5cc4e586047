"""The signal guard and the loader's stop: a first SIGINT/SIGTERM asks, a wait ends at once as
"never sent", the loader stops before its next request with nothing uncertain; a second
signal forces."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from pipeline.interrupts import ForcedStop, SignalGuard, StopRequested
from pipeline.ledger import Ledger, Target
from pipeline.load import execute
from pipeline.plan import build_plan
from tests.load.fake_kayse import FakeKayse
from tests.load.helpers import leads

TARGET = Target("http://kayse.test/v1", "sha256:000000000000")
TODAY = date(2026, 11, 23)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "ledger.sqlite") as opened:
        yield opened


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_first_signal_asks_a_second_forces_and_the_handlers_come_back(signum: signal.Signals) -> None:
    before = signal.getsignal(signum)
    with SignalGuard(announce=False) as guard:
        assert guard.reason is None
        guard.check()  # nothing asked yet
        os.kill(os.getpid(), signum)
        assert guard.reason == f"stopped by {signum.name}"
        with pytest.raises(StopRequested):
            guard.sleep(3600)  # a rate-limit wait ends at once
        with pytest.raises(StopRequested):
            guard.check()
        with pytest.raises(ForcedStop):
            os.kill(os.getpid(), signum)
    assert signal.getsignal(signum) == before


def test_a_stop_during_a_wait_leaves_nothing_uncertain(ledger: Ledger) -> None:
    """The wait before the second batch is ended by a stop: that batch was never sent, so its
    intent is dropped (no uncertain records) and a rerun sends it."""
    kayse = FakeKayse()
    kayse.fail_next("upsert_clients", None)  # the first batch goes through
    kayse.fail_next("upsert_clients", FakeKayse.never_sent())
    plan = build_plan(leads(4), ledger.snapshot(TARGET), batch_size=2, today=TODAY)
    run_id = ledger.start_run(TARGET, "load", {}, plan.total_requests)
    stopped = execute(plan, kayse, ledger, TARGET, run_id)
    assert stopped.outcome == "stopped" and "stopped by SIGINT" in (stopped.stopped_reason or "")
    assert stopped.uncertain == [] and ledger.uncertain() == []
    assert len(kayse.clients) == 2 and stopped.steps["clients"].sent == 2
    rerun_plan = build_plan(leads(4), ledger.snapshot(TARGET), batch_size=2, today=TODAY)
    assert rerun_plan.count(rerun_plan.clients, True) == 2  # the two never sent


def test_the_loader_stops_between_requests_when_asked(ledger: Ledger) -> None:
    kayse = FakeKayse()
    asked: list[bool] = []

    def check_stop() -> None:
        asked.append(True)
        if len(asked) > 1:  # asked for after the first request went out
            raise StopRequested("stopped by SIGTERM; the rest is sent by the next run")

    plan = build_plan(leads(4), ledger.snapshot(TARGET), batch_size=2, today=TODAY)
    run_id = ledger.start_run(TARGET, "load", {}, plan.total_requests)
    stopped = execute(plan, kayse, ledger, TARGET, run_id, check_stop=check_stop)
    assert stopped.outcome == "stopped" and kayse.calls == ["upsert_clients"]
    assert stopped.uncertain == [] and ledger.uncertain() == []
    assert len(ledger.snapshot(TARGET).clients) == 2  # the answer in flight was recorded
