"""The ledger's promises: ids are scoped to a target, intents are written ahead, a crash leaves
records uncertain rather than forgotten, and the operator can settle them."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.ledger import APPLICATION_ID, SCHEMA, Ledger, LedgerError, Target
from pipeline.model import ExitCode, UserError

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


# ---- the ledger guarded: what it is, who may read it, one load at a time ------------------


def holding_the_lock(path: Path) -> subprocess.Popen[str]:
    """Another process in the middle of a load on the ledger at `path`."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from pathlib import Path; from pipeline.ledger import Ledger\n"
            f"l = Ledger.open(Path({str(path)!r}))\n"
            "with l.exclusive():\n    print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_the_lock_is_on_the_file_whatever_the_path_to_it(tmp_path: Path) -> None:
    """A symlink and a hard link are the same ledger; there is no lock file to delete."""
    real = tmp_path / "real" / "l.sqlite"
    with Ledger.open(real):
        pass
    symlink = tmp_path / "via-symlink.sqlite"
    symlink.symlink_to(real)
    hard_link = tmp_path / "via-hard-link.sqlite"
    os.link(real, hard_link)
    holder = holding_the_lock(real)
    try:
        # whatever a person deletes next to the ledger, the lock holds
        for leftover in real.parent.glob("*.lock"):
            leftover.unlink()
        for path in (real, symlink, hard_link):
            with (
                Ledger.open(path) as ledger,
                pytest.raises(UserError, match="another load is using this ledger"),
                ledger.exclusive(),
            ):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert not list(tmp_path.rglob("*.lock"))  # nothing stale-looking left behind
    with Ledger.open(hard_link) as ledger, ledger.exclusive():
        pass


@pytest.mark.parametrize("content", ["empty", "foreign", "other-application"])
def test_a_file_that_is_not_a_kayse_ledger_is_refused_never_adopted(tmp_path: Path, content: str) -> None:
    path = tmp_path / "l.sqlite"
    if content == "empty":
        path.touch()
    else:
        with contextlib.closing(sqlite3.connect(path)) as other:
            other.execute("CREATE TABLE notes (text TEXT)")
            if content == "other-application":
                # even one with tables of our names: the header says whose it is
                other.execute("PRAGMA application_id=1234")
                other.executescript("CREATE TABLE meta (x); CREATE TABLE runs (x); CREATE TABLE entities (x)")
            other.commit()
    before = path.read_bytes()
    with pytest.raises(UserError, match="not a kayse-etl ledger") as refused:
        Ledger.open(path)
    assert refused.value.exit_code == ExitCode.USAGE
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.sqlite"]


def test_a_ledger_of_the_previous_round_is_accepted_and_stamped(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    legacy_schema = SCHEMA.split("-- Which client each case")[0] + SCHEMA.split(
        "CREATE TABLE IF NOT EXISTS members"
    )[1].join(["CREATE TABLE IF NOT EXISTS members", ""])
    with contextlib.closing(sqlite3.connect(path)) as old:
        old.executescript(legacy_schema)
        old.execute("INSERT INTO meta VALUES ('schema', '1')")
        old.execute("INSERT INTO targets VALUES (1, ?, ?)", (A.base_url, A.key_fingerprint))
        old.execute(
            "INSERT INTO entities (target_id, kind, source_key, kayse_id, state) VALUES (1, 'client', 'import:C1', 5, 'done')"
        )
        old.commit()
    assert "case_clients" not in legacy_schema and path.read_bytes()[68:72] == bytes(4)
    with Ledger.open(path) as ledger:
        assert ledger.snapshot(A).clients["import:C1"].kayse_id == 5
    assert int.from_bytes(path.read_bytes()[68:72], "big") == APPLICATION_ID


def test_no_ledger_is_made_where_none_is_expected(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no ledger at"):
        Ledger.open(tmp_path / "typo.sqlite", create=False)
    assert list(tmp_path.iterdir()) == []


def test_the_ledger_and_its_folders_are_the_owners_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask: files readable by everyone
    try:
        path = tmp_path / "new" / "folder" / "l.sqlite"
        with Ledger.open(path) as ledger:
            ledger.start_run(A, "load", {}, 1)
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
            assert {"l.sqlite", "l.sqlite-wal", "l.sqlite-shm"} <= set(modes)
            assert set(modes.values()) == {0o600}, modes
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
        # a ledger an older version left readable by everyone is made private on opening
        path.chmod(0o644)
        with Ledger.open(path):
            pass
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(previous)


def test_the_main_file_alone_is_complete_after_a_run(tmp_path: Path) -> None:
    """Copying just the .sqlite file is a full backup, even while another command has it open."""
    path = tmp_path / "l.sqlite"
    with Ledger.open(path) as reader, Ledger.open(path) as ledger:
        run = ledger.start_run(A, "load", {}, 1)
        batch = ledger.open_batch(A, run, "client", [f"import:C{i}" for i in range(500)])
        ledger.close_batch(A, batch, "client", {f"import:C{i}": (i, "h") for i in range(500)}, [])
        ledger.close()
        backup = tmp_path / "backup"
        backup.mkdir()
        shutil.copy(path, backup / "l.sqlite")  # the main file only: no -wal beside it
        assert reader.snapshot(A).clients["import:C7"].kayse_id == 7
    with Ledger.open(backup / "l.sqlite", create=False) as copy:
        assert len(copy.snapshot(A).clients) == 500


def immutable(path: Path) -> contextlib.AbstractContextManager[None]:
    """`path` made read-only even for root (who ignores chmod), for the length of the block."""

    @contextlib.contextmanager
    def block() -> Iterator[None]:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available here")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)

    return block()


def test_a_read_only_ledger_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger.open(path) as ledger:
        ledger.start_run(A, "load", {}, 1)
    with immutable(path), Ledger.open(path) as ledger:
        assert len(ledger.runs()) == 1  # reading it still works
        with pytest.raises(LedgerError, match="is read-only for you") as refused:
            ledger.start_run(A, "load", {}, 1)
        assert refused.value.exit_code == ExitCode.USAGE  # nothing was done


@pytest.mark.parametrize("damage", ["garbage pages", "truncated"])
def test_a_damaged_ledger_is_one_line_and_exit_2(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger.open(path) as ledger:
        run = ledger.start_run(A, "load", {}, 1)
        ledger.open_batch(A, run, "client", [f"import:C{i}" for i in range(2000)])
    data = path.read_bytes()
    path.write_bytes(data[:4096] + (b"\x5a" * (len(data) - 4096) if damage == "garbage pages" else b""))
    with pytest.raises(LedgerError, match="is damaged") as refused, Ledger.open(path) as ledger:
        ledger.snapshot(A)
    assert refused.value.exit_code == ExitCode.USAGE
    assert "restore it from a backup" in str(refused.value)


def test_a_file_size_limit_mid_run_stops_with_exit_3_and_the_ledger_stays_whole(tmp_path: Path) -> None:
    """A real write failure: the process may not grow a file past 200 kB (ulimit -f)."""
    path = tmp_path / "l.sqlite"
    script = (
        "import sys; from pathlib import Path; from pipeline.ledger import Ledger, Target\n"
        "from pipeline.model import UserError\n"
        f"A = Target({A.base_url!r}, {A.key_fingerprint!r})\n"
        "try:\n"
        f"    with Ledger.open(Path({str(path)!r})) as ledger:\n"
        "        run = ledger.start_run(A, 'load', {}, 1)\n"
        "        for i in range(1000):\n"
        "            ledger.open_batch(A, run, 'client', [f'import:{i}-{j}' + 'x' * 200 for j in range(50)])\n"
        "except UserError as error:\n"
        "    print(error); sys.exit(int(error.exit_code))\n"
    )
    limited = subprocess.run(
        [sys.executable, "-c", script],
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000)),
        capture_output=True,
        text=True,
    )
    assert limited.returncode == ExitCode.STOPPED, limited.stderr
    assert "could not be written" in limited.stdout and "the rerun continues" in limited.stdout
    assert "Traceback" not in limited.stderr
    with Ledger.open(path) as ledger:  # what was committed is there, and the ledger reads fine
        ledger.start_run(A, "load", {}, 1)
        assert ledger.uncertain(A), "the batches opened before the failure are uncertain"
