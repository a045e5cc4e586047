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
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.model import (
    EntityKind,
    LedgerEntry,
    LedgerSnapshot,
    RunRow,
    UncertainMessage,
    UncertainRow,
    UserError,
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

    def __init__(self, path: Path, connection: sqlite3.Connection):
        self.path = path
        self._db = connection

    # ---- opening, locking ----------------------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> Ledger:
        path = Path(path)
        if path.exists() and path.is_dir():
            raise UserError(f"ledger path {path} is a directory", hint="give a file path to --ledger")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, isolation_level=None, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.executescript(SCHEMA)
            version = db.execute("SELECT value FROM meta WHERE name='schema'").fetchone()
            if version is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif version[0] != SCHEMA_VERSION:
                raise UserError(
                    f"ledger {path} has schema version {version[0]}; this tool reads {SCHEMA_VERSION}"
                )
        except sqlite3.DatabaseError as error:
            raise UserError(
                f"cannot use {path} as a ledger: {error}",
                hint="is it a kayse-etl ledger, in a folder you can write to? Give another path with --ledger",
            ) from None
        except OSError as error:
            raise UserError(
                f"cannot create the ledger {path}: {error.strerror}",
                hint="give a writable path with --ledger",
            ) from None
        return cls(path, db)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the ledger for one load at a time; the OS drops the lock if the process dies."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        handle = open(lock_path, "w")  # noqa: SIM115 - held for the duration of the block
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserError(
                    f"another kayse-etl load is using the ledger {self.path}",
                    hint="wait for it to finish; two loads at once could create duplicates",
                ) from None
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            handle.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
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

    def mark_deleted(self, target: Target, kind: EntityKind, keys: Iterable[str]) -> None:
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
