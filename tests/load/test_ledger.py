"""The ledger's promises: ids are scoped to a target, intents are written ahead, a crash leaves
records uncertain rather than forgotten, and the operator can settle them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.ledger import Ledger, Target
from pipeline.model import UserError

A = Target("http://127.0.0.1:1/v1", "sha256:aaaaaaaaaaaa")
B = Target("http://127.0.0.1:1/v1", "sha256:bbbbbbbbbbbb")


def test_ids_are_scoped_to_their_target(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        run = ledger.start_run(A, "load", {}, 1)
        batch = ledger.open_batch(A, run, "client", ["import:C1"])
        ledger.close_batch(A, batch, "client", {"import:C1": (42, "h1")}, [])
        assert ledger.snapshot(A).clients["import:C1"].kayse_id == 42
        assert ledger.snapshot(B).clients == {}


def test_an_intent_left_open_by_a_crash_becomes_uncertain(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger.open(path) as ledger:
        run = ledger.start_run(A, "load", {}, 1)
        ledger.open_batch(A, run, "client", ["import:C1", "import:C2"])
        # the process dies here: no close_batch
    with Ledger.open(path) as ledger:
        assert {k: e.state for k, e in ledger.snapshot(A).clients.items()} == {
            "import:C1": "uncertain",
            "import:C2": "uncertain",
        }
        ledger.start_run(A, "load", {}, 0)
        assert [r.outcome for r in ledger.runs()] == ["running", "interrupted"]
        assert {r.source_key for r in ledger.uncertain(A)} == {"import:C1", "import:C2"}


def test_refused_creates_are_forgotten_so_a_fixed_row_can_be_sent_again(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        run = ledger.start_run(A, "load", {}, 1)
        batch = ledger.open_batch(A, run, "client", ["import:C1", "import:C2"])
        ledger.close_batch(A, batch, "client", {"import:C1": (1, "h")}, ["import:C2"])
        assert set(ledger.snapshot(A).clients) == {"import:C1"}


def test_resolve_with_an_id_or_for_recreation(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        run = ledger.start_run(A, "load", {}, 1)
        batch = ledger.open_batch(A, run, "client", ["import:C1", "import:C2"])
        ledger.close_batch(A, batch, "client", {}, [], uncertain=["import:C1", "import:C2"])
        assert ledger.resolve(A, "client", "import:C1", kayse_id=77)
        assert ledger.resolve(A, "client", "import:C2", kayse_id=None)
        assert not ledger.resolve(A, "client", "import:C2", kayse_id=None)  # nothing left to settle
        entry = ledger.snapshot(A).clients["import:C1"]
        # done, with no hash: the next load sends it once as an update to make Kayse match
        assert (entry.kayse_id, entry.state, entry.payload_hash) == (77, "done", None)
        assert "import:C2" not in ledger.snapshot(A).clients


def test_only_one_load_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from pipeline.ledger import Ledger\n"
            f"l = Ledger.open(Path({str(path)!r}))\n"
            "with l.exclusive():\n    print('locked', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with (
            Ledger.open(path) as ledger,
            pytest.raises(UserError, match="another load is using this ledger"),
            ledger.exclusive(),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
    with Ledger.open(path) as ledger, ledger.exclusive():  # a killed holder releases the lock
        pass


def test_not_a_ledger_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.sqlite"
    bogus.write_text("this is not a database, just text " * 100)
    before = bogus.read_bytes()
    with pytest.raises(UserError, match="not a kayse-etl ledger"):
        Ledger.open(bogus)
    assert bogus.read_bytes() == before  # refused, never adopted
