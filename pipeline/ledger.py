"""The ID ledger: what this tool has put into which Kayse target, so a rerun creates nothing twice.

Kayse has no lookup by external id, so this SQLite file is the only memory of which Kayse id
belongs to which source record. It keeps, per target (base URL + key fingerprint, never the
key): each record's Kayse id and the hash of the payload last sent, list membership, the write-
ahead intents around every create, and the run history.

The write-ahead rule: an intent is committed *immediately before* a create request is sent, and
closed in the same transaction that records the ids from the response. A crash (or a lost
response) between the two leaves the intent open: those records are `uncertain` — Kayse may or
may not hold them — and are never re-created without the operator's word (`resolve`).

It must never store personal data: ids, hashes, counts and file names only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.model import (
    EntityKind,
    ExitCode,
    LedgerEntry,
    LedgerSnapshot,
    RunRow,
    UncertainMessage,
    UncertainRow,
    UserError,
    printable,
    storage_problem,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS targets (
    id INTEGER PRIMARY KEY,
    base_url TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    UNIQUE (base_url, key_fingerprint)
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    target_id INTEGER NOT NULL REFERENCES targets(id),
    command TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    inputs TEXT NOT NULL,          -- JSON: file names and sha256, mapping name and sha256
    counts TEXT,                   -- JSON: per step counts
    planned_requests INTEGER,
    requests_sent INTEGER,
    outcome TEXT NOT NULL          -- running | ok | rejected | stopped | interrupted
);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    target_id INTEGER NOT NULL REFERENCES targets(id),
    run_id INTEGER NOT NULL REFERENCES runs(id),
    kind TEXT NOT NULL,
    items INTEGER NOT NULL,
    state TEXT NOT NULL,           -- open | closed | uncertain
    opened_at REAL NOT NULL,
    closed_at REAL
);
CREATE TABLE IF NOT EXISTS entities (
    target_id INTEGER NOT NULL REFERENCES targets(id),
    kind TEXT NOT NULL,            -- client | case | case_list | campaign
    source_key TEXT NOT NULL,
    kayse_id INTEGER,
    payload_hash TEXT,
    state TEXT NOT NULL,           -- in_flight | done | uncertain
    batch_id INTEGER REFERENCES batches(id),
    created_run INTEGER,
    updated_run INTEGER,
    PRIMARY KEY (target_id, kind, source_key)
);
CREATE INDEX IF NOT EXISTS entities_by_batch ON entities (batch_id);
-- Which client each case is linked to, so a rollback never deletes a client a live case needs.
CREATE TABLE IF NOT EXISTS case_clients (
    target_id INTEGER NOT NULL REFERENCES targets(id),
    case_key TEXT NOT NULL,
    client_key TEXT NOT NULL,
    PRIMARY KEY (target_id, case_key)
);
CREATE INDEX IF NOT EXISTS case_clients_by_client ON case_clients (target_id, client_key);
CREATE TABLE IF NOT EXISTS members (
    target_id INTEGER NOT NULL REFERENCES targets(id),
    list_key TEXT NOT NULL,
    case_key TEXT NOT NULL,
    run_id INTEGER,
    PRIMARY KEY (target_id, list_key, case_key)
);
CREATE TABLE IF NOT EXISTS messages (
    target_id INTEGER NOT NULL REFERENCES targets(id),
    channel TEXT NOT NULL,         -- sms | email
    case_id INTEGER NOT NULL,      -- Kayse ids: a message is one text to one client of one case
    client_id INTEGER NOT NULL,
    message_hash TEXT NOT NULL,    -- sha256 of channel, subject and text: a new text is a new message
    case_key TEXT NOT NULL,
    state TEXT NOT NULL,           -- in_flight | sent | uncertain | skipped | pending
    reason TEXT,                   -- a code (opted out, quiet hours, …): never personal data
    run_id INTEGER,
    updated_at REAL NOT NULL,
    PRIMARY KEY (target_id, channel, case_id, client_id, message_hash)
);
"""

SCHEMA_VERSION = "1"
# Stamped in the SQLite header (PRAGMA application_id): what tells a kayse-etl ledger from an
# empty file or another program's database at the same path. "KAYS" in ASCII.
APPLICATION_ID = 0x4B415953
USER_VERSION = 1
# The tables a ledger of the previous round has: such a file, unstamped, is ours to stamp.
_LEGACY_TABLES = {"meta", "targets", "runs", "batches", "entities", "members"}


class LedgerError(UserError):
    """The ledger's file failed under us (full disk, read-only, damaged): no bug, the machine."""


class _Guarded:
    """The SQLite connection, with the machine's failures (full disk, read-only or damaged
    file) turned into a `LedgerError` naming the ledger, instead of a traceback."""

    def __init__(self, db: sqlite3.Connection, ledger: Ledger):
        self._db = db
        self._ledger = ledger

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self._ledger.guard():
            return self._db.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        with self._ledger.guard():
            return self._db.executemany(sql, rows)


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _open_file(path: Path, *, create: bool) -> tuple[int, bool]:
    """An open descriptor of the ledger file, and whether this call created it. Created files
    are the owner's only (0600, in folders made 0700): the ledger names the people loaded."""
    flags = os.O_RDWR | os.O_CLOEXEC
    try:
        handle = os.open(path, flags)
        created = False
    except PermissionError:
        handle = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # read-only: reading it still works
        created = False
    except FileNotFoundError:
        if not create:
            raise
        _make_private_dirs(path.parent)
        try:
            handle = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
            created = True
        except FileExistsError:  # another load created it a moment ago: it is theirs to make
            handle = os.open(path, flags)
            created = False
    info = os.fstat(handle)
    if not stat.S_ISREG(info.st_mode):
        os.close(handle)
        raise UserError(
            f"the ledger path {printable(path)} is not a regular file", hint="give a file path to --ledger"
        )
    if info.st_mode & 0o077 and info.st_uid == os.getuid():
        with contextlib.suppress(OSError):  # a ledger of an older version, made under umask 022
            os.fchmod(handle, stat.S_IMODE(info.st_mode) & 0o700)
    return handle, created


def _make_private_dirs(folder: Path) -> None:
    """Create `folder` and any missing parents 0700; folders that exist are left as they are."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for each in reversed(missing):
        each.mkdir(mode=0o700, exist_ok=True)


def _check_is_a_ledger(handle: int, path: Path) -> None:
    """Refuse, before SQLite touches it, a file that cannot be a kayse-etl ledger."""
    shown = printable(path)
    header = os.pread(handle, 100, 0)
    hint = (
        "give the path of your kayse-etl ledger with --ledger; a first load creates one where no file exists"
    )
    if not header:
        raise UserError(
            f"{shown} is an empty file, not a kayse-etl ledger",
            hint=hint + " (delete this one if a load failed before it began)",
        )
    if not header.startswith(_SQLITE_MAGIC):
        raise UserError(f"{shown} is not a kayse-etl ledger (not an SQLite database)", hint=hint)
    application_id = int.from_bytes(header[68:72], "big")
    if application_id not in (0, APPLICATION_ID):
        raise UserError(f"{shown} is another program's SQLite database, not a kayse-etl ledger", hint=hint)
    if application_id == APPLICATION_ID and int.from_bytes(header[60:64], "big") > USER_VERSION:
        raise UserError(f"{shown} was made by a newer kayse-etl", hint="use that version to load with it")


@dataclass(frozen=True)
class Target:
    """Where records live: the ids of one target mean nothing on another."""

    base_url: str
    key_fingerprint: str

    def __str__(self) -> str:
        return f"{self.base_url} (key {self.key_fingerprint})"


MESSAGE_FINAL_STATES = frozenset({"sent", "uncertain", "skipped"})
"""A pair in one of these states is never sent again by a rerun of the same text: sent, may have
been sent (the operator decides), or skipped for good (opted out, no number, refused). `pending`
(held for quiet hours, not sent after a failure, or marked for resending) is sent by a later run."""


def _message_key(channel: str, case_id: int, client_id: int, message_hash: str) -> str:
    return f"{channel}:{case_id}:{client_id}:{message_hash[:12]}"


class Ledger:
    """One ledger file. Open it with `Ledger.open(path)`; use as a context manager to close it."""

    def __init__(self, path: Path, connection: sqlite3.Connection, handle: int):
        self.path = path
        self._raw = connection
        self._db = _Guarded(connection, self)
        self._handle = handle  # an open descriptor of the file itself: what `exclusive` locks
        # Once a run has started (or a rollback deleted something), a failure of the file means
        # "stopped partway" (exit 3: the rerun continues), before it "nothing was done" (exit 2).
        self.partway = False

    # ---- opening, locking ----------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Ledger:
        """Open the ledger at `path`. A ledger is created only where no file exists (and only
        with `create`); a file that is not a kayse-etl ledger — empty, another program's
        database, anything else — is refused, never adopted: adopting it would forget every id
        and create everything in Kayse again."""
        path = Path(path)
        shown = printable(path)
        if path.is_dir():
            raise UserError(f"ledger path {shown} is a directory", hint="give a file path to --ledger")
        try:
            handle, created = _open_file(path, create=create)
        except FileNotFoundError:
            if not create:
                raise UserError(
                    f"no ledger at {shown}", hint="give the path a load used (--ledger), or load first"
                ) from None
            raise UserError(
                f"cannot create the ledger {shown}: No such file or directory",
                hint="give a writable path with --ledger",
            ) from None
        except OSError as error:
            problem = storage_problem(error, f"the ledger {shown}")
            message = problem[0] if problem else f"cannot create the ledger {shown}: {error.strerror}"
            raise UserError(
                message, hint=problem[1] if problem else "give a writable path with --ledger"
            ) from None
        try:
            if not created:
                _check_is_a_ledger(handle, path)
            db = sqlite3.connect(path, isolation_level=None, timeout=30)
        except BaseException:
            os.close(handle)
            raise
        ledger = cls(path, db, handle)
        try:
            ledger._prepare(new=created)
        except BaseException:
            ledger._raw.close()
            os.close(handle)
            if created:  # leave no half-made ledger behind to be refused next time
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
        return ledger

    def _prepare(self, *, new: bool) -> None:
        db = self._db
        if new:
            # Stamped before the switch to WAL, so the mark is in the main file from the start.
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            db.execute(f"PRAGMA user_version={USER_VERSION}")
        elif db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables >= _LEGACY_TABLES:
                raise UserError(
                    f"{printable(self.path)} is another program's SQLite database, not a kayse-etl ledger",
                    hint="give the path of your kayse-etl ledger with --ledger",
                )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        with self.guard():
            self._raw.executescript(SCHEMA)
        version = db.execute("SELECT value FROM meta WHERE name='schema'").fetchone()
        if version is None:
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif version[0] != SCHEMA_VERSION:
            raise UserError(
                f"ledger {printable(self.path)} has schema version {version[0]}; this tool reads {SCHEMA_VERSION}"
            )
        # New, or a ledger of the previous round (its tables checked before): stamp it as ours.
        if db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            db.execute(f"PRAGMA user_version={USER_VERSION}")

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Turn a full disk, a read-only or damaged ledger file into one line and an exit code."""
        try:
            yield
        except (sqlite3.DatabaseError, OSError) as error:
            if isinstance(error, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
                raise  # our own mistake, not the machine's
            if isinstance(error, sqlite3.OperationalError) and "locked" in str(error).lower():
                raise LedgerError(
                    f"another program holds the ledger {printable(self.path)}",
                    hint="wait for it to finish, then run the same command again",
                    exit_code=ExitCode.STOPPED if self.partway else ExitCode.USAGE,
                ) from None
            problem = storage_problem(error, f"the ledger {printable(self.path)}")
            if problem is None:
                raise
            message, hint = problem
            if self.partway:
                hint += "; the ledger holds what was done, so the rerun continues"
            raise LedgerError(
                message, hint=hint, exit_code=ExitCode.STOPPED if self.partway else ExitCode.USAGE
            ) from None

    def close(self) -> None:
        """Fold the write-ahead log back into the file, so the .sqlite file alone is complete
        (a copy of it is a full backup), then let go of the file. Closing twice is harmless."""
        if self._handle < 0:
            return
        try:
            with contextlib.suppress(LedgerError):  # read-only: nothing of ours is in the log
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._raw.close()
        finally:
            os.close(self._handle)
            self._handle = -1

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the ledger for one load at a time; the OS drops the lock if the process dies.

        The lock is on the ledger file itself (its open descriptor), so every path to it — a
        symlink, a hard link, a copy of the path written differently — meets the same lock, and
        there is no lock file to go stale or be deleted."""
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another load is using this ledger ({printable(self.path)})",
                hint="wait for it to finish; two loads at once could create duplicates",
            ) from None
        try:
            yield
        finally:
            # Unlock but keep the descriptor open until the database is closed: closing a
            # descriptor of the file would drop SQLite's own locks on it.
            fcntl.flock(self._handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_Guarded]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            if self._raw.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._raw.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ---- targets and snapshots -----------------------------------------------------------

    def target_id(self, target: Target, *, create: bool = True) -> int | None:
        row = self._db.execute(
            "SELECT id FROM targets WHERE base_url=? AND key_fingerprint=?",
            (target.base_url, target.key_fingerprint),
        ).fetchone()
        if row:
            return int(row[0])
        if not create:
            return None
        cursor = self._db.execute(
            "INSERT INTO targets (base_url, key_fingerprint) VALUES (?, ?)",
            (target.base_url, target.key_fingerprint),
        )
        return int(cursor.lastrowid or 0)

    def targets(self, base_url: str) -> list[Target]:
        rows = self._db.execute("SELECT base_url, key_fingerprint FROM targets WHERE base_url=?", (base_url,))
        return [Target(r[0], r[1]) for r in rows]

    def snapshot(self, target: Target) -> LedgerSnapshot:
        """Everything the planner needs to know about `target`, read in one go."""
        tid = self.target_id(target, create=False)
        snapshot = LedgerSnapshot(target=str(target))
        if tid is None:
            return snapshot
        buckets: dict[str, dict[str, LedgerEntry]] = {
            "client": snapshot.clients,
            "case": snapshot.cases,
            "case_list": snapshot.case_lists,
            "campaign": snapshot.campaigns,
        }
        rows = self._db.execute(
            "SELECT kind, source_key, kayse_id, payload_hash, state FROM entities WHERE target_id=?",
            (tid,),
        )
        for kind, key, kayse_id, hash_, state in rows:
            # An intent still open when nobody holds the lock is a crash mid-request: uncertain.
            buckets[kind][key] = LedgerEntry(kayse_id, hash_, "done" if state == "done" else "uncertain")
        members: dict[str, set[str]] = {}
        for list_key, case_key in self._db.execute(
            "SELECT list_key, case_key FROM members WHERE target_id=?", (tid,)
        ):
            members.setdefault(list_key, set()).add(case_key)
        snapshot.members.update({k: frozenset(v) for k, v in members.items()})
        return snapshot

    # ---- runs ----------------------------------------------------------------------------

    def start_run(self, target: Target, command: str, inputs: dict[str, Any], planned: int | None) -> int:
        with self.transaction() as db:
            tid = self.target_id(target)
            # A run still "running" was killed: say so in the history.
            db.execute(
                "UPDATE runs SET outcome='interrupted' WHERE outcome='running' AND target_id=?", (tid,)
            )
            db.execute("UPDATE batches SET state='uncertain' WHERE state='open' AND target_id=?", (tid,))
            db.execute(
                "UPDATE entities SET state='uncertain' WHERE state='in_flight' AND target_id=?", (tid,)
            )
            db.execute(
                "UPDATE messages SET state='uncertain' WHERE state='in_flight' AND target_id=?", (tid,)
            )
            cursor = db.execute(
                "INSERT INTO runs (target_id, command, started_at, inputs, planned_requests, outcome) "
                "VALUES (?, ?, ?, ?, ?, 'running')",
                (tid, command, time.time(), json.dumps(inputs), planned),
            )
        self.partway = True
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, outcome: str, counts: dict[str, Any], requests_sent: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET finished_at=?, outcome=?, counts=?, requests_sent=? WHERE id=?",
                (time.time(), outcome, json.dumps(counts), requests_sent, run_id),
            )

    def runs(self, limit: int = 50) -> list[RunRow]:
        rows = self._db.execute(
            "SELECT r.id, t.base_url || ' (key ' || t.key_fingerprint || ')', r.command, r.started_at, "
            "r.finished_at, r.inputs, r.counts, r.planned_requests, r.requests_sent, r.outcome "
            "FROM runs r JOIN targets t ON t.id = r.target_id ORDER BY r.id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            RunRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6] or "{}"), r[7], r[8], r[9])
            for r in rows
        ]

    # ---- write-ahead creates ---------------------------------------------------------------

    def open_batch(self, target: Target, run_id: int, kind: EntityKind, keys: Iterable[str]) -> int:
        """Commit the intent to create `keys`, immediately before the request goes out."""
        keys = list(keys)
        with self.transaction() as db:
            tid = self.target_id(target)
            cursor = db.execute(
                "INSERT INTO batches (target_id, run_id, kind, items, state, opened_at) "
                "VALUES (?, ?, ?, ?, 'open', ?)",
                (tid, run_id, kind, len(keys), time.time()),
            )
            batch_id = int(cursor.lastrowid or 0)
            db.executemany(
                "INSERT INTO entities (target_id, kind, source_key, state, batch_id, created_run) "
                "VALUES (?, ?, ?, 'in_flight', ?, ?) "
                "ON CONFLICT (target_id, kind, source_key) DO UPDATE SET "
                "state='in_flight', batch_id=excluded.batch_id, kayse_id=NULL, payload_hash=NULL, "
                "created_run=excluded.created_run",
                [(tid, kind, key, batch_id, run_id) for key in keys],
            )
        return batch_id

    def close_batch(
        self,
        target: Target,
        batch_id: int,
        kind: EntityKind,
        created: dict[str, tuple[int, str]],
        failed: Iterable[str],
        uncertain: Iterable[str] = (),
    ) -> None:
        """Record the answer to a create batch: ids and hashes of what was created, and forget the
        intent of what Kayse refused (so a later run may try again once the data is fixed)."""
        with self.transaction() as db:
            tid = self.target_id(target)
            db.executemany(
                "UPDATE entities SET kayse_id=?, payload_hash=?, state='done' "
                "WHERE target_id=? AND kind=? AND source_key=?",
                [(kid, hash_, tid, kind, key) for key, (kid, hash_) in created.items()],
            )
            db.executemany(
                "DELETE FROM entities WHERE target_id=? AND kind=? AND source_key=? AND state='in_flight'",
                [(tid, kind, key) for key in failed],
            )
            uncertain = list(uncertain)
            db.executemany(
                "UPDATE entities SET state='uncertain' WHERE target_id=? AND kind=? AND source_key=?",
                [(tid, kind, key) for key in uncertain],
            )
            db.execute(
                "UPDATE batches SET state=?, closed_at=? WHERE id=?",
                ("uncertain" if uncertain else "closed", time.time(), batch_id),
            )

    def record_updates(self, target: Target, run_id: int, kind: EntityKind, updated: dict[str, str]) -> None:
        """Updates are idempotent: record the new payload hashes after the answer."""
        with self.transaction() as db:
            tid = self.target_id(target)
            db.executemany(
                "UPDATE entities SET payload_hash=?, updated_run=? WHERE target_id=? AND kind=? AND source_key=?",
                [(hash_, run_id, tid, kind, key) for key, hash_ in updated.items()],
            )

    def record_found(self, target: Target, run_id: int, kind: EntityKind, key: str, kayse_id: int) -> None:
        """A record found in Kayse (a list recovered by name search): take its id as ours."""
        with self.transaction() as db:
            tid = self.target_id(target)
            db.execute(
                "INSERT INTO entities (target_id, kind, source_key, kayse_id, state, created_run) "
                "VALUES (?, ?, ?, ?, 'done', ?) ON CONFLICT (target_id, kind, source_key) DO UPDATE SET "
                "kayse_id=excluded.kayse_id, state='done'",
                (tid, kind, key, kayse_id, run_id),
            )

    def record_members(self, target: Target, run_id: int, list_key: str, case_keys: Iterable[str]) -> None:
        with self.transaction() as db:
            tid = self.target_id(target)
            db.executemany(
                "INSERT OR IGNORE INTO members (target_id, list_key, case_key, run_id) VALUES (?, ?, ?, ?)",
                [(tid, list_key, key, run_id) for key in case_keys],
            )

    def record_case_clients(self, target: Target, links: dict[str, str]) -> None:
        """Which client each case is linked to (case key → client key), recorded before the
        cases are sent, so a rollback knows which clients live cases need."""
        with self.transaction() as db:
            tid = self.target_id(target)
            db.executemany(
                "INSERT INTO case_clients (target_id, case_key, client_key) VALUES (?, ?, ?) "
                "ON CONFLICT (target_id, case_key) DO UPDATE SET client_key=excluded.client_key",
                [(tid, case, client) for case, client in links.items()],
            )

    def remove_members(self, target: Target, list_key: str, case_keys: Iterable[str]) -> None:
        with self.transaction() as db:
            tid = self.target_id(target)
            db.executemany(
                "DELETE FROM members WHERE target_id=? AND list_key=? AND case_key=?",
                [(tid, list_key, key) for key in case_keys],
            )

    # ---- the operator's decisions on uncertain records --------------------------------------

    def uncertain(self, target: Target | None = None) -> list[UncertainRow]:
        query = (
            "SELECT e.kind, e.source_key, e.batch_id, e.created_run FROM entities e "
            "WHERE e.state IN ('uncertain', 'in_flight')"
        )
        params: tuple[Any, ...] = ()
        if target is not None:
            tid = self.target_id(target, create=False)
            if tid is None:
                return []
            query += " AND e.target_id=?"
            params = (tid,)
        rows = self._db.execute(query + " ORDER BY e.kind, e.source_key", params).fetchall()
        return [UncertainRow(r[0], r[1], r[2], r[3]) for r in rows]

    def resolve(self, target: Target, kind: EntityKind, key: str, *, kayse_id: int | None) -> bool:
        """Settle one record by the operator's word: the Kayse id it has (it exists: an uncertain
        create that landed, or a record merged in the web app), or None (it does not exist: an
        uncertain create that never landed, or a record deleted in the web app) so that the next
        load creates it. False when the ledger has no such record."""
        with self.transaction() as db:
            tid = self.target_id(target, create=False)
            if tid is None:
                return False
            where = "target_id=? AND kind=? AND source_key=?"
            if kayse_id is None:
                cursor = db.execute(f"DELETE FROM entities WHERE {where}", (tid, kind, key))
            else:
                # payload_hash NULL: the next load sends the record once as an update, so Kayse
                # ends up holding exactly our data whatever state it was left in.
                cursor = db.execute(
                    f"UPDATE entities SET kayse_id=?, state='done', payload_hash=NULL WHERE {where}",
                    (kayse_id, tid, kind, key),
                )
            if kind == "case":  # its list membership was for the old id: attach it afresh
                db.execute("DELETE FROM members WHERE target_id=? AND case_key=?", (tid, key))
            return cursor.rowcount > 0

    # ---- rollback ----------------------------------------------------------------------------

    def created_by_run(self, target: Target, run_id: int) -> dict[str, list[tuple[str, int]]]:
        tid = self.target_id(target, create=False)
        result: dict[str, list[tuple[str, int]]] = {}
        if tid is None:
            return result
        for kind, key, kid in self._db.execute(
            "SELECT kind, source_key, kayse_id FROM entities WHERE target_id=? AND created_run=? "
            "AND state='done' AND kayse_id IS NOT NULL",
            (tid, run_id),
        ):
            result.setdefault(kind, []).append((key, int(kid)))
        return result

    def cases_needing(
        self, target: Target, run_id: int, client_keys: Iterable[str]
    ) -> list[tuple[str, int | None, int, str]]:
        """Cases, other than the ones run `run_id` made and that are settled, linked to
        `client_keys`: (case key, Kayse id or None while uncertain, the run that made it, client key)."""
        tid = self.target_id(target, create=False)
        keys = set(client_keys)
        if tid is None or not keys:
            return []
        rows = self._db.execute(
            "SELECT e.source_key, e.kayse_id, e.created_run, l.client_key FROM entities e "
            "JOIN case_clients l ON l.target_id=e.target_id AND l.case_key=e.source_key "
            "WHERE e.target_id=? AND e.kind='case' "
            "AND (e.created_run IS NOT ? OR e.state != 'done' OR e.kayse_id IS NULL) ORDER BY e.source_key",
            (tid, run_id),
        )
        return [
            (key, None if kid is None else int(kid), int(run or 0), client)
            for key, kid, run, client in rows
            if client in keys
        ]

    def unlinked_cases(self, target: Target, run_id: int) -> list[tuple[str, int, int]]:
        """Cases of other runs whose client the ledger does not know (loaded by an older
        version): (case key, Kayse id, run). A rollback asks Kayse for their clients."""
        tid = self.target_id(target, create=False)
        if tid is None:
            return []
        rows = self._db.execute(
            "SELECT e.source_key, e.kayse_id, e.created_run FROM entities e "
            "LEFT JOIN case_clients l ON l.target_id=e.target_id AND l.case_key=e.source_key "
            "WHERE e.target_id=? AND e.kind='case' AND e.kayse_id IS NOT NULL AND l.case_key IS NULL "
            "AND (e.created_run IS NOT ? OR e.state != 'done') ORDER BY e.source_key",
            (tid, run_id),
        )
        return [(key, int(kid), int(run or 0)) for key, kid, run in rows]

    def keys_of(self, target: Target, kind: EntityKind, kayse_ids: Iterable[int]) -> dict[int, str]:
        """The ledger's keys of the records of `kind` with these Kayse ids."""
        tid = self.target_id(target, create=False)
        wanted = set(kayse_ids)
        if tid is None or not wanted:
            return {}
        rows = self._db.execute(
            "SELECT kayse_id, source_key FROM entities WHERE target_id=? AND kind=? AND kayse_id IS NOT NULL",
            (tid, kind),
        )
        return {int(kid): key for kid, key in rows if int(kid) in wanted}

    def mark_deleted(self, target: Target, kind: EntityKind, keys: Iterable[str]) -> None:
        self.partway = True  # Kayse has already deleted them: a failure now is partway
        with self.transaction() as db:
            tid = self.target_id(target)
            keys = list(keys)
            db.executemany(
                "DELETE FROM entities WHERE target_id=? AND kind=? AND source_key=?",
                [(tid, kind, key) for key in keys],
            )
            if kind == "case":
                db.executemany(
                    "DELETE FROM members WHERE target_id=? AND case_key=?", [(tid, key) for key in keys]
                )
                db.executemany(
                    "DELETE FROM case_clients WHERE target_id=? AND case_key=?", [(tid, key) for key in keys]
                )

    def run_target(self, run_id: int) -> Target | None:
        row = self._db.execute(
            "SELECT t.base_url, t.key_fingerprint FROM runs r JOIN targets t ON t.id=r.target_id WHERE r.id=?",
            (run_id,),
        ).fetchone()
        return Target(row[0], row[1]) if row else None

    # ---- messages: each text to each client of each case, at most once ---------------------

    def message_states(
        self, target: Target, channel: str, message_hash: str
    ) -> dict[int, dict[int, tuple[str, str | None]]]:
        """Case id → client id → (state, reason code), for one message text on one target."""
        tid = self.target_id(target, create=False)
        result: dict[int, dict[int, tuple[str, str | None]]] = {}
        if tid is None:
            return result
        for case_id, client_id, state, reason in self._db.execute(
            "SELECT case_id, client_id, state, reason FROM messages "
            "WHERE target_id=? AND channel=? AND message_hash=?",
            (tid, channel, message_hash),
        ):
            result.setdefault(int(case_id), {})[int(client_id)] = (state, reason)
        return result

    def set_message(
        self,
        target: Target,
        run_id: int,
        channel: str,
        message_hash: str,
        case_id: int,
        client_id: int,
        case_key: str,
        state: str,
        reason: str | None = None,
    ) -> None:
        """Record one pair's state, committed before returning. Written as `in_flight` immediately
        before the send (the write-ahead intent) and closed as `sent` after the answer: a crash in
        between leaves it in flight, which the next run turns into `uncertain`."""
        with self.transaction() as db:
            tid = self.target_id(target)
            db.execute(
                "INSERT INTO messages (target_id, channel, case_id, client_id, message_hash, case_key, state, "
                "reason, run_id, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (target_id, channel, case_id, client_id, message_hash) DO UPDATE SET "
                "state=excluded.state, reason=excluded.reason, run_id=excluded.run_id, updated_at=excluded.updated_at",
                (
                    tid,
                    channel,
                    case_id,
                    client_id,
                    message_hash,
                    case_key,
                    state,
                    reason,
                    run_id,
                    time.time(),
                ),
            )

    def uncertain_messages(self, target: Target | None = None) -> list[UncertainMessage]:
        query = (
            "SELECT channel, case_id, client_id, message_hash, case_key, run_id FROM messages "
            "WHERE state IN ('uncertain', 'in_flight')"
        )
        params: tuple[Any, ...] = ()
        if target is not None:
            tid = self.target_id(target, create=False)
            if tid is None:
                return []
            query += " AND target_id=?"
            params = (tid,)
        rows = self._db.execute(query + " ORDER BY case_id, client_id, channel", params).fetchall()
        return [
            UncertainMessage(_message_key(r[0], r[1], r[2], r[3]), r[0], int(r[1]), int(r[2]), r[4], r[5])
            for r in rows
        ]

    def resolve_message(self, target: Target, key: str, *, sent: bool) -> bool:
        """Settle an uncertain message by the operator's word: it went out (`sent`: never again), or
        it did not (the next run of the same text sends it). False when no uncertain message matches."""
        parts = key.split(":")
        if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit() or len(parts[3]) < 8:
            raise UserError(
                f"{key!r} is not a message key",
                hint="use the key `kayse-etl uncertain` shows: sms:CASE:CLIENT:HASH",
            )
        channel, case_id, client_id, prefix = parts[0], int(parts[1]), int(parts[2]), parts[3]
        with self.transaction() as db:
            tid = self.target_id(target, create=False)
            if tid is None:
                return False
            cursor = db.execute(
                "UPDATE messages SET state=?, reason=?, updated_at=? WHERE target_id=? AND channel=? AND case_id=? "
                "AND client_id=? AND substr(message_hash, 1, ?)=? AND state IN ('uncertain', 'in_flight')",
                (
                    "sent" if sent else "pending",
                    "resolved-sent" if sent else "resend",
                    time.time(),
                    tid,
                    channel,
                    case_id,
                    client_id,
                    len(prefix),
                    prefix,
                ),
            )
            return cursor.rowcount > 0

    # ---- per-target bulk caps ----------------------------------------------------------------
    # The largest batch an account accepted, learned from its refusals, so the next plan packs
    # its requests to fit at once instead of paying for the refusal again. Kept in its own
    # table, created on first use, so it needs nothing of the schema above.

    _BULK_CAPS = (
        "CREATE TABLE IF NOT EXISTS bulk_caps ("
        " target_id INTEGER NOT NULL REFERENCES targets(id),"
        " kind TEXT NOT NULL,"  # client | case | members (list create include_ids, attach, detach)
        " cap INTEGER NOT NULL CHECK (cap >= 1),"
        " PRIMARY KEY (target_id, kind))"
    )

    def bulk_caps(self, target: Target) -> dict[str, int]:
        """kind → the largest batch `target` accepts, for the kinds whose cap was learned."""
        tid = self.target_id(target, create=False)
        if tid is None:
            return {}
        self._db.execute(self._BULK_CAPS)
        rows = self._db.execute("SELECT kind, cap FROM bulk_caps WHERE target_id=?", (tid,))
        return {str(kind): int(cap) for kind, cap in rows}

    def record_bulk_cap(self, target: Target, kind: str, cap: int) -> None:
        """Remember that `target` refuses batches of `kind` above `cap` (a lower cap wins)."""
        if cap < 1:
            raise ValueError("a bulk cap is at least 1")
        self._db.execute(self._BULK_CAPS)
        with self.transaction() as db:
            tid = self.target_id(target)
            db.execute(
                "INSERT INTO bulk_caps (target_id, kind, cap) VALUES (?, ?, ?) "
                "ON CONFLICT (target_id, kind) DO UPDATE SET cap=min(cap, excluded.cap)",
                (tid, kind, cap),
            )

    # ---- end of per-target bulk caps -----------------------------------------------------------
