"""The sandbox's state: clients, cases, case lists, campaigns… in SQLite, behind one lock.

Why it exists: the sandbox must behave like Kayse across requests and (with `--db`) across
restarts, including the awkward parts the ETL depends on — soft deletes, links replaced on
update, partial or all-or-nothing bulk batches, list membership evaluated at read time.

Must never: know about HTTP, rate limits or faults (the gate does that), or share code with the
client in `pipeline.kayse`. Every public method is one transaction: it commits completely or
not at all, so a "lost response" fault can commit and then drop the answer.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pipeline.sandbox import validation as v
from pipeline.sandbox.validation import ApiError, bad_request, not_found

ORIGIN = "public_api"
DEFAULT_CASE_TYPES = ("personal_injury", "civil", "mass_tort", "workers_comp", "criminal")
DEFAULT_STATUSES = ("active", "open", "pending", "closed")
OUTCOME_TYPES: tuple[dict[str, str], ...] = (
    {"id": "qualified", "label": "Qualified Lead", "description": "Lead meets qualification criteria"},
    {"id": "not_interested", "label": "Not Interested", "description": "Lead declined the offer"},
    {"id": "callback", "label": "Callback Requested", "description": "Lead asked to be called back later"},
)
"""The reference's three example outcome types: `id` a string slug, `label` and `description` for people."""
CRM_INTEGRATIONS: tuple[dict[str, Any], ...] = (
    {"type": "smartadvocate", "enabled": True, "connected_at": "2026-01-15T08:00:00Z"},
)
"""The reference's example: one connected SmartAdvocate integration."""
BULK_DELETE_MAX = 500  # documented for cases, assumed for clients

BulkMode = Literal["partial", "atomic"]
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS case_types (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS statuses (
    id INTEGER PRIMARY KEY AUTOINCREMENT, case_type_id INTEGER NOT NULL, name TEXT NOT NULL COLLATE NOCASE,
    UNIQUE (case_type_id, name));
CREATE TABLE IF NOT EXISTS clients (
    id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL, update_origin TEXT,
    deleted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS cases (
    id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL, case_type_id INTEGER NOT NULL,
    status_id INTEGER NOT NULL, update_origin TEXT, deleted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS links (
    case_id INTEGER NOT NULL, client_id INTEGER NOT NULL, PRIMARY KEY (case_id, client_id));
CREATE INDEX IF NOT EXISTS links_by_client ON links (client_id);
CREATE TABLE IF NOT EXISTS case_lists (
    id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL, filter TEXT, include_ids TEXT NOT NULL,
    exclude_ids TEXT NOT NULL, update_origin TEXT, deleted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS campaigns (
    id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS crm_mappings (
    kayse_field TEXT PRIMARY KEY, crm_field TEXT NOT NULL, direction TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS communications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, case_id INTEGER NOT NULL,
    client_id INTEGER NOT NULL, data TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refused_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, case_id INTEGER NOT NULL,
    client_id INTEGER NOT NULL, data TEXT NOT NULL, reason TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS opt_outs (
    client_id INTEGER PRIMARY KEY, sms INTEGER NOT NULL DEFAULT 0, email INTEGER NOT NULL DEFAULT 0);
"""
ENTITY_TABLES = (
    "clients",
    "cases",
    "links",
    "case_lists",
    "campaigns",
    "agents",
    "crm_mappings",
    "communications",
    "refused_messages",
    "opt_outs",
)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    """All sandbox state. Thread-safe: endpoints may run in uvicorn's threadpool."""

    def __init__(self, db_path: str | None = None):
        self._lock = threading.RLock()
        self._db = sqlite3.connect(db_path or ":memory:", check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if db_path:
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        with self._transaction():
            self._seed_metadata()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- plumbing -----------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _savepoint(self, body: Callable[[], T]) -> T:
        """Run `body` so that, if it raises, none of its writes remain (one bulk item)."""
        self._db.execute("SAVEPOINT item")
        try:
            result = body()
        except BaseException:
            self._db.execute("ROLLBACK TO item")
            self._db.execute("RELEASE item")
            raise
        self._db.execute("RELEASE item")
        return result

    def _seed_metadata(self) -> None:
        if self._db.execute("SELECT 1 FROM case_types LIMIT 1").fetchone():
            return
        for type_name in DEFAULT_CASE_TYPES:
            type_id = self._db.execute("INSERT INTO case_types (name) VALUES (?)", (type_name,)).lastrowid
            for status in DEFAULT_STATUSES:
                self._db.execute("INSERT INTO statuses (case_type_id, name) VALUES (?, ?)", (type_id, status))

    def reset(self) -> None:
        """Forget every record. Entity ids keep counting up, so a stale id gets a 404, not a new record."""
        with self._transaction() as db:
            for table in (*ENTITY_TABLES, "statuses", "case_types"):
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM sqlite_sequence WHERE name IN ('case_types', 'statuses')")
            self._seed_metadata()

    # ---- metadata: case types and statuses; an unknown status is created, a type is not

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            types = self._db.execute("SELECT id, name FROM case_types ORDER BY id").fetchall()
            result = []
            for row in types:
                statuses = self._db.execute(
                    "SELECT id, name FROM statuses WHERE case_type_id = ? ORDER BY id", (row["id"],)
                ).fetchall()
                result.append({"id": row["id"], "name": row["name"], "statuses": [dict(s) for s in statuses]})
            return {"case_types": result}

    def _case_type(self, name: str) -> sqlite3.Row:
        row = self._db.execute("SELECT id, name FROM case_types WHERE name = ?", (name.strip(),)).fetchone()
        if row is None:
            known = ", ".join(r["name"] for r in self._db.execute("SELECT name FROM case_types ORDER BY id"))
            raise bad_request(f"type: unknown case type {name!r} (known: {known})")
        return row

    def _status(self, case_type_id: int, name: str) -> sqlite3.Row:
        """A status of the case type, created when missing (GH metadata: "created if missing")."""
        query = "SELECT id, name FROM statuses WHERE case_type_id = ? AND name = ?"
        row = self._db.execute(query, (case_type_id, name.strip())).fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO statuses (case_type_id, name) VALUES (?, ?)", (case_type_id, name.strip())
            )
            row = self._db.execute(query, (case_type_id, name.strip())).fetchone()
        return row

    # ---- clients -----------------------------------------------------------------------

    def other_live_id(self, kind: Literal["clients", "cases"], besides: set[int]) -> int | None:
        """The lowest id of a live record of `kind` not in `besides` (for the "foreign-id" lie)."""
        with self._lock:
            for (entity_id,) in self._db.execute(f"SELECT id FROM {kind} WHERE deleted = 0 ORDER BY id"):
                if entity_id not in besides:
                    return int(entity_id)
        return None

    def _live(self, table: str, entity_id: int) -> sqlite3.Row | None:
        return self._db.execute(
            f"SELECT * FROM {table} WHERE id = ? AND deleted = 0", (entity_id,)
        ).fetchone()

    def _require_live(self, table: str, ids: list[int], field: str) -> None:
        missing = [i for i in ids if self._live(table, i) is None]
        if missing:
            noun = "case" if table == "cases" else "client"
            raise bad_request(f"{field}: unknown {noun} id(s) {', '.join(map(str, missing))}")

    def _client_view(self, row: sqlite3.Row) -> dict[str, Any]:
        case_ids = [
            r[0]
            for r in self._db.execute(
                "SELECT l.case_id FROM links l JOIN cases c ON c.id = l.case_id "
                "WHERE l.client_id = ? AND c.deleted = 0 ORDER BY l.case_id",
                (row["id"],),
            )
        ]
        return {
            "id": row["id"],
            **json.loads(row["data"]),
            "case_ids": case_ids,
            "origin": ORIGIN,
            "update_origin": row["update_origin"],
        }

    def _save_client(self, checked: v.ClientInput, client_id: int | None) -> dict[str, Any]:
        if checked.case_ids is not None:
            self._require_live("cases", checked.case_ids, "case_ids")
        data = json.dumps(checked.fields)
        if client_id is None:
            client_id = self._db.execute("INSERT INTO clients (data) VALUES (?)", (data,)).lastrowid
            assert client_id is not None
        else:
            if self._live("clients", client_id) is None:
                raise not_found(f"client {client_id} not found")
            self._db.execute(
                "UPDATE clients SET data = ?, update_origin = ? WHERE id = ?", (data, ORIGIN, client_id)
            )
        if checked.case_ids is not None:  # present: replaces the links; absent: leaves them
            self._db.execute("DELETE FROM links WHERE client_id = ?", (client_id,))
            self._db.executemany(
                "INSERT INTO links (case_id, client_id) VALUES (?, ?)",
                [(c, client_id) for c in checked.case_ids],
            )
        row = self._live("clients", client_id)
        assert row is not None
        return self._client_view(row)

    def create_client(self, body: Any, *, strict: bool) -> dict[str, Any]:
        checked = v.client_input(body, strict=strict)
        with self._transaction():
            return self._save_client(checked, None)

    def get_client(self, client_id: int) -> dict[str, Any]:
        with self._lock:
            row = self._live("clients", client_id)
            if row is None:
                raise not_found(f"client {client_id} not found")
            return self._client_view(row)

    def replace_client(self, client_id: int, body: Any, *, strict: bool) -> dict[str, Any]:
        checked = v.client_input(body, strict=strict)
        with self._transaction():
            return self._save_client(checked, client_id)

    def delete_client(self, client_id: int) -> dict[str, Any]:
        with self._transaction() as db:
            if self._live("clients", client_id) is None:
                raise not_found(f"client {client_id} not found")
            db.execute("UPDATE clients SET deleted = 1 WHERE id = ?", (client_id,))
            return {"message": "client deleted successfully"}

    # ---- cases -------------------------------------------------------------------------

    def _case_view(self, row: sqlite3.Row) -> dict[str, Any]:
        clients = self._db.execute(
            "SELECT c.id, c.data FROM links l JOIN clients c ON c.id = l.client_id "
            "WHERE l.case_id = ? AND c.deleted = 0 ORDER BY c.id",
            (row["id"],),
        ).fetchall()
        data = json.loads(row["data"])
        client_opted_out = any(json.loads(c["data"]).get("voice_calls_opted_out") for c in clients)
        opt_outs = self._opt_outs([c["id"] for c in clients])
        return {
            "id": row["id"],
            **data,
            "client_ids": [c["id"] for c in clients],
            "origin": ORIGIN,
            "update_origin": row["update_origin"],
            "call_opted_out": bool(data.get("opt_out_voice_calls")) or client_opted_out,
            "sms_opted_out": any(sms for sms, _ in opt_outs.values()),
            "email_opted_out": any(email for _, email in opt_outs.values()),
        }

    def _opt_outs(self, client_ids: list[int]) -> dict[int, tuple[bool, bool]]:
        """Client id → (sms, email) opt-outs, as a STOP reply or an unsubscribe would set them."""
        if not client_ids:
            return {}
        marks = ",".join("?" * len(client_ids))
        rows = self._db.execute(
            f"SELECT client_id, sms, email FROM opt_outs WHERE client_id IN ({marks})", client_ids
        )
        return {r["client_id"]: (bool(r["sms"]), bool(r["email"])) for r in rows}

    def set_opt_out(self, body: Any) -> dict[str, Any]:
        """Sandbox-only: opt a client out of (or back into) SMS and/or email."""
        body = v.require_object(body)
        client_id = v.integer(body, "client_id", required=True)
        sms, email = v.boolean(body, "sms"), v.boolean(body, "email")
        with self._transaction() as db:
            if self._live("clients", client_id or 0) is None:
                raise not_found(f"client {client_id} not found")
            before = self._opt_outs([client_id or 0]).get(client_id or 0, (False, False))
            after = (before[0] if sms is None else sms, before[1] if email is None else email)
            db.execute(
                "INSERT INTO opt_outs (client_id, sms, email) VALUES (?, ?, ?) ON CONFLICT (client_id) "
                "DO UPDATE SET sms = excluded.sms, email = excluded.email",
                (client_id, int(after[0]), int(after[1])),
            )
        return {"client_id": client_id, "sms": after[0], "email": after[1]}

    def _save_case(self, checked: v.CaseInput, case_id: int | None, *, strict: bool) -> dict[str, Any]:
        fields = dict(checked.fields)
        case_type = self._case_type(fields["type"])
        status = self._status(case_type["id"], fields["status"])
        fields["type"], fields["status"] = case_type["name"], status["name"]
        if case_id is not None and self._live("cases", case_id) is None:
            raise not_found(f"case {case_id} not found")
        if strict:
            clash = self._db.execute(
                "SELECT id FROM cases WHERE deleted = 0 AND json_extract(data, '$.case_number') = ? AND id IS NOT ?",
                (fields["case_number"], case_id),
            ).fetchone()
            if clash:
                raise bad_request(
                    f"case_number: {fields['case_number']!r} already used by case {clash['id']}"
                )
        client_ids = checked.client_ids or []
        self._require_live("clients", client_ids, "client_ids")
        values = (json.dumps(fields), case_type["id"], status["id"])
        if case_id is None:
            case_id = self._db.execute(
                "INSERT INTO cases (data, case_type_id, status_id) VALUES (?, ?, ?)", values
            ).lastrowid
            assert case_id is not None
        else:
            self._db.execute(
                "UPDATE cases SET data = ?, case_type_id = ?, status_id = ?, update_origin = ? WHERE id = ?",
                (*values, ORIGIN, case_id),
            )
        # Full replace: the links become exactly client_ids, cleared when the key is absent.
        self._db.execute("DELETE FROM links WHERE case_id = ?", (case_id,))
        self._db.executemany(
            "INSERT INTO links (case_id, client_id) VALUES (?, ?)", [(case_id, c) for c in client_ids]
        )
        if fields.get("opt_out_voice_calls"):
            for client_id in client_ids:
                self._db.execute(
                    "UPDATE clients SET data = json_set(data, '$.voice_calls_opted_out', json('true')) WHERE id = ?",
                    (client_id,),
                )
        row = self._live("cases", case_id)
        assert row is not None
        return self._case_view(row)

    def create_case(self, body: Any, *, strict: bool) -> dict[str, Any]:
        checked = v.case_input(body, strict=strict)
        with self._transaction():
            return self._save_case(checked, None, strict=strict)

    def get_case(self, case_id: int) -> dict[str, Any]:
        with self._lock:
            row = self._live("cases", case_id)
            if row is None:
                raise not_found(f"case {case_id} not found")
            return self._case_view(row)

    def replace_case(self, case_id: int, body: Any, *, strict: bool) -> dict[str, Any]:
        checked = v.case_input(body, strict=strict)
        with self._transaction():
            return self._save_case(checked, case_id, strict=strict)

    def delete_case(self, case_id: int) -> dict[str, Any]:
        with self._transaction() as db:
            if self._live("cases", case_id) is None:
                raise not_found(f"case {case_id} not found")
            db.execute("UPDATE cases SET deleted = 1 WHERE id = ?", (case_id,))
            return {"message": "case deleted successfully"}

    # ---- bulk upserts: a size cap, partial or atomic batches, failed[] entries -----------

    def bulk_upsert(
        self, kind: Literal["clients", "cases"], body: Any, *, strict: bool, bulk_max: int, mode: BulkMode
    ) -> dict[str, Any]:
        """No `id` → create; with `id` → update by PUT rules. Partial success, or 400 for all in atomic mode."""
        items = _bulk_items(body, kind, bulk_max)
        saved: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        with self._transaction():
            for index, item in enumerate(items):
                try:
                    saved.append(
                        self._savepoint(functools.partial(self._upsert_one, kind, item, strict=strict))
                    )
                except ApiError as error:
                    if mode == "atomic":
                        raise bad_request(f"{kind}[{index}]: {error.message}") from None
                    failed.append(_failure(index, item, error))
        return {kind: saved, "successful_ids": [r["id"] for r in saved], "failed": failed}

    def _upsert_one(self, kind: str, item: Any, *, strict: bool) -> dict[str, Any]:
        item = v.require_object(item, kind[:-1])
        entity_id = v.integer(item, "id", minimum=1)
        if kind == "clients":
            return self._save_client(v.client_input(item, strict=strict, allow_id=True), entity_id)
        return self._save_case(v.case_input(item, strict=strict, allow_id=True), entity_id, strict=strict)

    # ---- bulk deletes: clients (force), cases (with_clients) ---------------------------

    def bulk_delete_clients(self, body: Any) -> dict[str, Any]:
        body = v.require_object(body)
        ids = _delete_ids(body, "client_ids")
        force = bool(v.boolean(body, "force"))
        deleted: list[int] = []
        failed: list[dict[str, Any]] = []
        with self._transaction() as db:
            for client_id in ids:
                if self._live("clients", client_id) is None:
                    failed.append(
                        {"id": client_id, "error": "not found", "message": f"client {client_id} not found"}
                    )
                    continue
                linked = [
                    r[0]
                    for r in db.execute(
                        "SELECT l.case_id FROM links l JOIN cases c ON c.id = l.case_id "
                        "WHERE l.client_id = ? AND c.deleted = 0 ORDER BY l.case_id",
                        (client_id,),
                    )
                ]
                if linked and not force:
                    failed.append(
                        {
                            "id": client_id,
                            "error": "linked",
                            "message": f"client {client_id} is linked to case(s) "
                            f"{', '.join(map(str, linked))}; pass force=true to delete and unlink",
                        }
                    )
                    continue
                db.execute("DELETE FROM links WHERE client_id = ?", (client_id,))
                db.execute("UPDATE clients SET deleted = 1 WHERE id = ?", (client_id,))
                deleted.append(client_id)
        return {"deleted_ids": deleted, "failed": failed}

    def bulk_delete_cases(self, body: Any) -> dict[str, Any]:
        body = v.require_object(body)
        ids = _delete_ids(body, "ids")
        with_clients = bool(v.boolean(body, "with_clients"))
        with self._transaction() as db:
            live = [i for i in ids if self._live("cases", i) is not None]
            failed = [
                {"id": i, "error": "not found", "message": f"case {i} not found"}
                for i in ids
                if i not in set(live)
            ]
            deleting = set(live)
            deleted_clients: list[int] = []
            if with_clients and live:
                marks = ",".join("?" * len(live))
                candidates = [
                    r[0]
                    for r in db.execute(
                        f"SELECT DISTINCT l.client_id FROM links l JOIN clients c ON c.id = l.client_id "
                        f"WHERE c.deleted = 0 AND l.case_id IN ({marks}) ORDER BY l.client_id",
                        live,
                    )
                ]
                for client_id in candidates:  # only when every live case of the client is being deleted
                    cases_of_client = {
                        r[0]
                        for r in db.execute(
                            "SELECT l.case_id FROM links l JOIN cases c ON c.id = l.case_id "
                            "WHERE l.client_id = ? AND c.deleted = 0",
                            (client_id,),
                        )
                    }
                    if cases_of_client <= deleting:
                        db.execute("UPDATE clients SET deleted = 1 WHERE id = ?", (client_id,))
                        deleted_clients.append(client_id)
            db.executemany("UPDATE cases SET deleted = 1 WHERE id = ?", [(i,) for i in live])
        return {"deleted_ids": live, "deleted_client_ids": deleted_clients, "failed": failed}

    # ---- case lists: membership, attach/detach, clients append/remove, list type -------

    def _list_row(self, list_id: int) -> sqlite3.Row:
        row = self._live("case_lists", list_id)
        if row is None:
            raise not_found(f"case list {list_id} not found")
        return row

    def _live_cases(self) -> list[sqlite3.Row]:
        return self._db.execute("SELECT id, case_type_id, status_id FROM cases WHERE deleted = 0").fetchall()

    def _members(self, row: sqlite3.Row, live_cases: list[sqlite3.Row] | None = None) -> list[int]:
        """Resolved at read time: (filter matches ∪ include_ids) − exclude_ids, live cases only."""
        live_cases = self._live_cases() if live_cases is None else live_cases
        case_filter = json.loads(row["filter"]) if row["filter"] else None
        include, exclude = set(json.loads(row["include_ids"])), set(json.loads(row["exclude_ids"]))
        members = set()
        for case in live_cases:
            matched = case_filter is not None and all(
                case[column] in case_filter[key]
                for key, column in (("case_type_ids", "case_type_id"), ("status_ids", "status_id"))
                if key in case_filter
            )
            if (matched or case["id"] in include) and case["id"] not in exclude:
                members.add(case["id"])
        return sorted(members)

    def _list_case_type(self, row: sqlite3.Row, members: list[int]) -> int | None:
        """The list's case type: the filter's single case type, else the one type all members share, else None."""
        case_filter = json.loads(row["filter"]) if row["filter"] else None
        if case_filter and len(case_filter.get("case_type_ids", [])) == 1:
            return int(case_filter["case_type_ids"][0])
        types = {self._case_type_of(case_id) for case_id in members}
        return types.pop() if len(types) == 1 else None

    def _case_type_of(self, case_id: int) -> int:
        return int(self._db.execute("SELECT case_type_id FROM cases WHERE id = ?", (case_id,)).fetchone()[0])

    def _list_view(self, row: sqlite3.Row, live_cases: list[sqlite3.Row] | None = None) -> dict[str, Any]:
        data = json.loads(row["data"])
        return {
            "id": row["id"],
            "name": data["name"],
            "description": data.get("description"),
            "external_source": data.get("external_source"),
            "external_source_id": data.get("external_source_id"),
            "case_count": len(self._members(row, live_cases)),
            "origin": ORIGIN,
            "update_origin": row["update_origin"],
        }

    def _check_filter(self, case_filter: dict[str, list[int]] | None) -> None:
        if not case_filter:
            return
        for key, table in (("case_type_ids", "case_types"), ("status_ids", "statuses")):
            for item_id in case_filter.get(key, []):
                if not self._db.execute(f"SELECT 1 FROM {table} WHERE id = ?", (item_id,)).fetchone():
                    raise bad_request(f"filter.{key}: unknown id {item_id}")

    def _save_list(self, checked: v.CaseListInput, list_id: int | None) -> sqlite3.Row:
        self._check_filter(checked.filter)
        self._require_live("cases", checked.include_ids, "include_ids")
        self._require_live("cases", checked.exclude_ids, "exclude_ids")
        values = (
            json.dumps(checked.fields),
            json.dumps(checked.filter) if checked.filter is not None else None,
            json.dumps(checked.include_ids),
            json.dumps(checked.exclude_ids),
        )
        if list_id is None:
            list_id = self._db.execute(
                "INSERT INTO case_lists (data, filter, include_ids, exclude_ids) VALUES (?, ?, ?, ?)", values
            ).lastrowid
            assert list_id is not None
        else:
            self._list_row(list_id)
            self._db.execute(
                "UPDATE case_lists SET data = ?, filter = ?, include_ids = ?, exclude_ids = ?, update_origin = ? "
                "WHERE id = ?",
                (*values, ORIGIN, list_id),
            )
        return self._list_row(list_id)

    def create_case_list(self, body: Any, *, strict: bool) -> dict[str, Any]:
        checked = v.case_list_input(body, strict=strict)
        with self._transaction():
            return self._list_view(self._save_list(checked, None))

    def bulk_case_lists(self, body: Any, *, strict: bool, bulk_max: int, mode: BulkMode) -> dict[str, Any]:
        items = _bulk_items(body, "lists", bulk_max)
        done: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []

        def one(item: Any) -> dict[str, Any]:
            item = v.require_object(item, "case list")
            list_id = v.integer(item, "id", minimum=1)
            row = self._save_list(v.case_list_input(item, strict=strict, allow_id=True), list_id)
            return {"id": row["id"], "action": "created" if list_id is None else "updated"}

        with self._transaction():
            for index, item in enumerate(items):
                try:
                    done.append(self._savepoint(functools.partial(one, item)))
                except ApiError as error:
                    if mode == "atomic":
                        raise bad_request(f"lists[{index}]: {error.message}") from None
                    failed.append(_failure(index, item, error))
        return {"lists": done, "successful_ids": [d["id"] for d in done], "failed": failed}

    def search_case_lists(
        self, key: str | None, page: int, page_size: int, hide_empty: bool
    ) -> dict[str, Any]:
        with self._lock:
            live_cases = self._live_cases()
            views = [
                self._list_view(row, live_cases)
                for row in self._db.execute("SELECT * FROM case_lists WHERE deleted = 0 ORDER BY id")
            ]
        if key:
            views = [view for view in views if key.casefold() in view["name"].casefold()]
        if hide_empty:
            views = [view for view in views if view["case_count"] > 0]
        start = (page - 1) * page_size
        return {"data": views[start : start + page_size], "page": page, "total": len(views)}

    def change_membership(self, list_id: int, case_ids: list[int], *, attach: bool) -> dict[str, Any]:
        """Set semantics: attaching a member or detaching a non-member is a no-op, not an error."""
        with self._transaction():
            row = self._list_row(list_id)
            self._require_live("cases", case_ids, "include_ids")
            self._apply_membership(row, case_ids, attach=attach)
            return self._list_view(self._list_row(list_id))

    def _apply_membership(self, row: sqlite3.Row, case_ids: list[int], *, attach: bool) -> None:
        include = [i for i in json.loads(row["include_ids"]) if i not in case_ids]
        exclude = [i for i in json.loads(row["exclude_ids"]) if i not in case_ids]
        if attach:
            include += case_ids
        elif row["filter"] is not None:
            exclude += case_ids  # a filter match must be kept out explicitly
        self._db.execute(
            "UPDATE case_lists SET include_ids = ?, exclude_ids = ?, update_origin = ? WHERE id = ?",
            (json.dumps(include), json.dumps(exclude), ORIGIN, row["id"]),
        )

    def change_client_membership(
        self, list_id: int, client_ids: list[int], *, append: bool
    ) -> dict[str, Any]:
        """Append adds the clients' cases of the list's case type (all if it has none); remove takes them out."""
        with self._transaction() as db:
            row = self._list_row(list_id)
            self._require_live("clients", client_ids, "client_ids")
            list_type = self._list_case_type(row, self._members(row))
            matched: list[int] = []
            for client_id in client_ids:
                for case in db.execute(
                    "SELECT c.id, c.case_type_id FROM links l JOIN cases c ON c.id = l.case_id "
                    "WHERE l.client_id = ? AND c.deleted = 0 ORDER BY c.id",
                    (client_id,),
                ):
                    if (not append or list_type is None or case["case_type_id"] == list_type) and case[
                        "id"
                    ] not in matched:
                        matched.append(case["id"])
            self._apply_membership(row, matched, attach=append)
            return {
                "action": "append" if append else "remove",
                "list_id": list_id,
                "client_count": len(client_ids),
                "matched_case_count": len(matched),
            }

    # ---- campaigns: list type, calling window, agents ----------------------------------

    def create_campaign(self, body: Any, *, strict: bool) -> dict[str, Any]:
        checked = v.campaign_input(body, strict=strict)
        with self._transaction() as db:
            row = self._live("case_lists", checked.case_list_id)
            if row is None:
                raise bad_request(f"case_list_id: case list {checked.case_list_id} not found")
            members = self._members(row)
            list_type = self._list_case_type(row, members)
            if list_type is None:
                raise bad_request(
                    f"case_list_id: case list {checked.case_list_id} has no case type "
                    "(give it a filter with one case_type_ids entry, or cases of a single type)"
                )
            stray = [case_id for case_id in members if self._case_type_of(case_id) != list_type]
            if stray:
                raise bad_request(
                    f"case_list_id: case list {checked.case_list_id} holds cases of another case type "
                    f"({', '.join(map(str, stray[:10]))})"
                )
            known_agent = db.execute("SELECT 1 FROM agents WHERE id = ?", (checked.agent_id,)).fetchone()
            if strict and checked.agent_id is not None and not known_agent:
                raise bad_request(f"agent_id: unknown agent {checked.agent_id!r} (strict mode)")
            record = checked.fields | {"case_type_id": list_type}
            campaign_id = db.execute(
                "INSERT INTO campaigns (data, created_at) VALUES (?, ?)", (json.dumps(record), now_iso())
            ).lastrowid
            return {"id": campaign_id}

    # ---- communication -----------------------------------------------------------------

    def schedule_message(self, channel: Literal["sms", "email"], body: Any) -> dict[str, Any]:
        """Schedule one message. A message to an opted-out client, or to one with no mobile (SMS)
        or email, is refused with 400 and kept in `refused_messages`, so a test sees the attempt."""
        body = v.require_object(body)
        case_id = v.integer(body, "case_id", required=True)
        client_id = v.integer(body, "client_id", required=True)
        if channel == "email":
            v.text(body, "subject", required=True)
        v.text(body, "message", required=True)
        refusal: str | None = None
        with self._transaction() as db:
            if self._live("cases", case_id or 0) is None:
                raise bad_request(f"case_id: case {case_id} not found")
            client = self._live("clients", client_id or 0)
            if client is None:
                raise bad_request(f"client_id: client {client_id} not found")
            if not db.execute(
                "SELECT 1 FROM links WHERE case_id = ? AND client_id = ?", (case_id, client_id)
            ).fetchone():
                raise bad_request(f"client_id: client {client_id} is not linked to case {case_id}")
            sms_out, email_out = self._opt_outs([client_id or 0]).get(client_id or 0, (False, False))
            address = json.loads(client["data"]).get("mobile" if channel == "sms" else "email")
            if sms_out if channel == "sms" else email_out:
                refusal = f"client_id: client {client_id} opted out of {channel}"
            elif not address:
                refusal = (
                    f"client_id: client {client_id} has no {'mobile number' if channel == 'sms' else 'email'}"
                )
            table = "communications" if refusal is None else "refused_messages"
            columns = "channel, case_id, client_id, data, created_at" + (", reason" if refusal else "")
            values = [channel, case_id, client_id, json.dumps(body), now_iso()] + (
                [refusal] if refusal else []
            )
            db.execute(f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(values))})", values)
        if refusal is not None:
            raise bad_request(refusal)
        return {"message": f"{channel} scheduled"}

    def messages(self) -> dict[str, Any]:
        """Sandbox-only: every message asked for, scheduled or refused, in arrival order."""
        with self._lock:
            scheduled = [
                {"id": r["id"], "channel": r["channel"], "case_id": r["case_id"], "client_id": r["client_id"],
                 **json.loads(r["data"]), "status": "scheduled", "created_at": r["created_at"]}
                for r in self._db.execute("SELECT * FROM communications ORDER BY id")
            ]  # fmt: skip
            refused = [
                {"channel": r["channel"], "case_id": r["case_id"], "client_id": r["client_id"],
                 **json.loads(r["data"]), "status": "refused", "reason": r["reason"], "created_at": r["created_at"]}
                for r in self._db.execute("SELECT * FROM refused_messages ORDER BY id")
            ]  # fmt: skip
        return {"messages": scheduled, "refused": refused}

    # ---- voice agents, CRM mappings -----------------------------------------------------

    def create_agent(self, body: Any) -> dict[str, Any]:
        fields = v.agent_input(body, partial=False)
        agent = {"id": f"agent_{uuid.uuid4().hex[:12]}", **fields, "created_at": now_iso()}
        with self._transaction() as db:
            db.execute("INSERT INTO agents (id, data) VALUES (?, ?)", (agent["id"], json.dumps(agent)))
        return agent

    def update_agent(self, agent_id: str, body: Any) -> dict[str, Any]:
        fields = v.agent_input(body, partial=True)
        with self._transaction() as db:
            row = db.execute("SELECT data FROM agents WHERE id = ?", (agent_id,)).fetchone()
            if row is None:
                raise not_found(f"agent {agent_id!r} not found")
            agent = json.loads(row["data"]) | fields
            db.execute("UPDATE agents SET data = ? WHERE id = ?", (json.dumps(agent), agent_id))
        return dict(agent)

    def crm_mappings(self) -> dict[str, Any]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM crm_mappings ORDER BY kayse_field").fetchall()
            return {"mappings": [dict(r) for r in rows]}

    def upsert_crm_mappings(self, body: Any) -> dict[str, Any]:
        items = v.crm_mappings_input(body)
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO crm_mappings (kayse_field, crm_field, direction) VALUES (:kayse_field, :crm_field, "
                ":direction) ON CONFLICT (kayse_field) DO UPDATE SET crm_field = excluded.crm_field, "
                "direction = excluded.direction",
                items,
            )
        return {"updated": len(items), **self.crm_mappings()}

    # ---- inspection (sandbox-only) -----------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """Everything, soft-deleted rows included and flagged; lists and campaigns with resolved members."""
        with self._lock:
            clients = [
                self._client_view(r) | {"deleted": bool(r["deleted"])}
                for r in self._db.execute("SELECT * FROM clients ORDER BY id")
            ]
            cases = [
                self._case_view(r) | {"deleted": bool(r["deleted"])}
                for r in self._db.execute("SELECT * FROM cases ORDER BY id")
            ]
            lists = []
            for row in self._db.execute("SELECT * FROM case_lists ORDER BY id").fetchall():
                members = self._members(row)
                lists.append(
                    self._list_view(row)
                    | {
                        "filter": json.loads(row["filter"]) if row["filter"] else None,
                        "include_ids": json.loads(row["include_ids"]),
                        "exclude_ids": json.loads(row["exclude_ids"]),
                        "case_type_id": self._list_case_type(row, members),
                        "case_ids": members,
                        "deleted": bool(row["deleted"]),
                    }
                )
            members_by_list = {item["id"]: item["case_ids"] for item in lists}
            campaigns = []
            for row in self._db.execute("SELECT * FROM campaigns ORDER BY id"):
                data = json.loads(row["data"])
                campaigns.append(
                    {
                        "id": row["id"],
                        **data,
                        "created_at": row["created_at"],
                        "case_ids": members_by_list.get(data["case_list_id"], []),
                    }
                )
            return {
                "clients": clients,
                "cases": cases,
                "case_lists": lists,
                "campaigns": campaigns,
                "agents": [
                    json.loads(r["data"]) for r in self._db.execute("SELECT data FROM agents ORDER BY id")
                ],
                "crm_mappings": self.crm_mappings()["mappings"],
                "communications": [
                    {
                        "id": r["id"],
                        "channel": r["channel"],
                        "case_id": r["case_id"],
                        "client_id": r["client_id"],
                        **json.loads(r["data"]),
                        "created_at": r["created_at"],
                    }
                    for r in self._db.execute("SELECT * FROM communications ORDER BY id")
                ],
                **self.metadata(),
            }


# --------------------------------------------------------------------------------------
# Helpers shared by the bulk endpoints
# --------------------------------------------------------------------------------------


def _bulk_items(body: Any, key: str, bulk_max: int) -> list[Any]:
    body = v.require_object(body)
    items = body.get(key)
    if not isinstance(items, list):
        raise bad_request(f"{key}: an array is required")
    if len(items) > bulk_max:
        raise bad_request(f"{key}: at most {bulk_max} items per request, got {len(items)}")
    return items


def _delete_ids(body: dict[str, Any], key: str) -> list[int]:
    ids = v.id_list(body, key)
    if ids is None:
        raise bad_request(f"{key}: an array of ids is required")
    if len(ids) > BULK_DELETE_MAX:
        raise bad_request(f"{key}: at most {BULK_DELETE_MAX} ids per request, got {len(ids)}")
    return ids


def _failure(index: int, item: Any, error: ApiError) -> dict[str, Any]:
    """One `failed[]` entry, in the shape the client assumes (the API does not document it)."""
    item_id = item.get("id") if isinstance(item, dict) else None
    source_id = item.get("external_source_id") if isinstance(item, dict) else None
    return {
        "index": index,
        "id": item_id if isinstance(item_id, int) and not isinstance(item_id, bool) else None,
        "external_source_id": source_id if isinstance(source_id, str) else None,
        "error": error.error,
        "message": error.message,
    }
