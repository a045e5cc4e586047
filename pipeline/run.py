"""The orchestrator: the whole flow on one page.

extract → map → validate → plan → load → report. Each function here calls the stages in
order and hands each the previous one's value; the stages never call each other. The CLI and
any Python caller (a cron script, an Airflow or Dagster task) go through these functions.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import plan as plan_stage
from pipeline.ledger import Ledger, Target, UncertainRow
from pipeline.model import AxiomaticExtract, ExitCode, Plan, RunResult, UserError, ValidationResult
from pipeline.settings import Connection, key_fingerprint

if TYPE_CHECKING:  # the loader pulls in the HTTP client: `validate` need not pay for it
    from pipeline.load import LoadObserver

# ---- validate ----------------------------------------------------------------------------


def validate(
    sources: list[Path], mapping: Path, *, sheet: str | None = None, today: date | None = None
) -> ValidationResult:
    """Read the sources, map them with the mapping file and check every row: no network.

    extract → map → validate, each stage handed the previous one's value. `today` (default: the
    local date) is the limit for dates of birth in the future.
    """
    from pipeline.extract import read_sources
    from pipeline.mapping import apply_mapping, load_mapping
    from pipeline.validate import validate as validate_rows

    spec = load_mapping(mapping)
    extracted = read_sources(sources, sheet=sheet)
    mapped = apply_mapping(extracted, spec)
    return validate_rows(mapped, spec, today=today)


# ---- plan and load ---------------------------------------------------------------------


@dataclass(frozen=True)
class LoadOutcome:
    validation: ValidationResult
    plan: Plan
    result: RunResult | None  # None for a dry run

    @property
    def exit_code(self) -> ExitCode:
        if self.result is not None and self.result.outcome == "stopped":
            return ExitCode.STOPPED
        if self.validation.rows_rejected or (self.result is not None and self.result.outcome == "rejected"):
            return ExitCode.REJECTED
        return ExitCode.OK


def default_ledger_path(mapping: Path) -> Path:
    """Next to the mapping: one ledger per mapping, so each source system keeps its own ids."""
    return mapping.with_name(mapping.stem + ".ledger.sqlite")


def _inputs(sources: list[Path], validation: ValidationResult) -> dict[str, Any]:
    def sha256(path: Path) -> str:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    return {
        "sources": [{"name": p.name, "sha256": sha256(p)} for p in sources],
        "mapping": {"name": validation.mapping.name, "sha256": validation.mapping.sha256},
        "rows_read": validation.rows_read,
        "rows_rejected": validation.rows_rejected,
    }


def plan(
    sources: list[Path],
    mapping: Path,
    *,
    base_url: str,
    api_key: str | None,
    ledger_path: Path | None = None,
    campaign: bool = False,
    batch_size: int = plan_stage.DEFAULT_BATCH_SIZE,
    sheet: str | None = None,
    today: date | None = None,
) -> tuple[ValidationResult, Plan]:
    """What a load would send, from the ledger alone: no network. Without a key, the ledger's
    one target for `base_url` is used (or, if it has none or several, a first load is planned)."""
    validation = validate(sources, mapping, sheet=sheet)
    with Ledger.open(ledger_path or default_ledger_path(mapping)) as ledger:
        if api_key is not None:
            target = Target(base_url, key_fingerprint(api_key))
        else:
            known = ledger.targets(base_url)
            target = known[0] if len(known) == 1 else Target(base_url, "no key given")
        snapshot = ledger.snapshot(target)
    return validation, plan_stage.build_plan(
        validation, snapshot, campaign=campaign, batch_size=batch_size, today=today
    )


def load(
    sources: list[Path],
    mapping: Path,
    *,
    connection: Connection,
    ledger_path: Path | None = None,
    campaign: bool = False,
    batch_size: int = plan_stage.DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    max_wait: float | None = None,
    sheet: str | None = None,
    today: date | None = None,
    observer: LoadObserver | None = None,
    on_wait: Any = None,
) -> LoadOutcome:
    """Validate, plan and (unless `dry_run`) load into Kayse, recording every step in the ledger.

    Safe to rerun at any time with the same inputs: what is already in Kayse is skipped, what a
    crash left half-done is finished, and nothing is created twice."""
    from pipeline import load as load_stage
    from pipeline.kayse.client import KayseClient

    validation = validate(sources, mapping, sheet=sheet)
    target = Target(connection.base_url, connection.fingerprint)
    with Ledger.open(ledger_path or default_ledger_path(mapping)) as ledger, ledger.exclusive():
        snapshot = ledger.snapshot(target)
        the_plan = plan_stage.build_plan(
            validation, snapshot, campaign=campaign, batch_size=batch_size, today=today
        )
        if dry_run:
            return LoadOutcome(validation, the_plan, None)
        client = KayseClient(connection.base_url, connection.api_key, max_wait=max_wait, on_wait=on_wait)
        run_id = ledger.start_run(target, "load", _inputs(sources, validation), the_plan.total_requests)
        try:
            result = load_stage.execute(the_plan, client, ledger, target, run_id, observer)
        finally:
            client.close()
        if result.outcome == "ok" and validation.rows_rejected:
            result.outcome = "rejected"  # loaded all it could; some rows never got past validation
        counts = {name: vars(step) for name, step in result.steps.items()}
        ledger.finish_run(run_id, result.outcome, counts, result.requests_sent)
    return LoadOutcome(validation, the_plan, result)


@dataclass(frozen=True)
class RollbackSummary:
    run_id: int
    deleted: dict[str, int]
    failed: dict[str, int]
    left: dict[str, int]  # lists and campaigns: the API offers no delete for them

    def describe(self) -> str:
        lines = [f"rollback of run {self.run_id}:"]
        for kind in ("case", "client"):
            lines.append(
                f"  {kind}s deleted: {self.deleted.get(kind, 0)}, not deleted: {self.failed.get(kind, 0)}"
            )
        for kind, count in self.left.items():
            if count:
                lines.append(
                    f"  {count} {kind}(s) left in place: the Kayse API cannot delete them; remove them in the web app"
                )
        return "\n".join(lines)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.REJECTED if any(self.failed.values()) else ExitCode.OK


def rollback(run_id: int, *, connection: Connection, ledger_path: Path) -> RollbackSummary:
    """Delete from Kayse what run `run_id` created (cases first, then their clients), and forget
    it in the ledger, so the next load would create it afresh."""
    from pipeline.kayse.client import KayseClient

    if not ledger_path.exists():
        raise UserError(f"no ledger at {ledger_path}", hint="give the path a load used (--ledger)")
    target = Target(connection.base_url, connection.fingerprint)
    with Ledger.open(ledger_path) as ledger, ledger.exclusive():
        run_target = ledger.run_target(run_id)
        if run_target is None:
            raise UserError(f"no run {run_id} in {ledger_path}", hint="see `kayse-etl runs --ledger ...`")
        if run_target != target:
            raise UserError(
                f"run {run_id} loaded into {run_target}, not {target}",
                hint="set KAYSE_BASE_URL / KAYSE_API_KEY to the run's target",
            )
        created = ledger.created_by_run(target, run_id)
        deleted: dict[str, int] = {}
        failed: dict[str, int] = {}
        client = KayseClient(connection.base_url, connection.api_key)
        try:
            deleters = (
                ("case", lambda ids: client.cases.bulk_delete(ids).deleted_ids),
                ("client", lambda ids: client.clients.bulk_delete(ids, force=True).deleted_ids),
            )
            for kind, delete in deleters:
                records = created.get(kind, [])
                for start in range(0, len(records), 500):
                    chunk = records[start : start + 500]
                    gone = set(delete([kid for _, kid in chunk]))
                    ledger.mark_deleted(target, kind, [key for key, kid in chunk if kid in gone])  # type: ignore[arg-type]
                    deleted[kind] = deleted.get(kind, 0) + len(gone)
                    failed[kind] = failed.get(kind, 0) + len(chunk) - len(gone)
        finally:
            client.close()
    left = {kind: len(created.get(kind, [])) for kind in ("case_list", "campaign")}
    return RollbackSummary(run_id, deleted, failed, left)


# ---- settling uncertain records -------------------------------------------------------

KINDS = ("client", "case", "case_list", "campaign")


@dataclass(frozen=True)
class Decision:
    """The operator's word on one uncertain record: its Kayse id, or None to re-create it."""

    kind: str
    key: str
    kayse_id: int | None


def list_uncertain(ledger_path: Path) -> list[UncertainRow]:
    if not ledger_path.exists():
        raise UserError(f"no ledger at {ledger_path}", hint="give the path a load used (--ledger)")
    with Ledger.open(ledger_path) as ledger:
        return ledger.uncertain()


def write_decisions_template(rows: list[UncertainRow], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["kind", "key", "run", "batch", "kayse_id"])
        writer.writerows([r.kind, r.source_key, r.run_id, r.batch_id, ""] for r in rows)


def read_decisions(path: Path) -> list[Decision]:
    """Rows with a Kayse id or the word `recreate` in `kayse_id`; blank rows are left uncertain."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}") from None
    decisions = []
    for number, row in enumerate(rows, start=2):
        kind, key, value = ((row.get(c) or "").strip() for c in ("kind", "key", "kayse_id"))
        if not value:
            continue
        if kind not in KINDS or not key:
            raise UserError(
                f"{path} row {number}: kind must be one of {', '.join(KINDS)} and key must be set"
            )
        if value.lower() == "recreate":
            decisions.append(Decision(kind, key, None))
        elif value.isdigit():
            decisions.append(Decision(kind, key, int(value)))
        else:
            raise UserError(
                f"{path} row {number}: kayse_id must be a number or the word recreate, not {value!r}"
            )
    return decisions


def resolve(
    decisions: list[Decision], *, connection: Connection, ledger_path: Path
) -> tuple[list[Decision], list[Decision]]:
    """Apply the operator's decisions for `connection`'s target; returns (settled, not matched)."""
    for d in decisions:
        if d.kind not in KINDS:
            raise UserError(f"unknown kind {d.kind!r}", hint=f"one of {', '.join(KINDS)}")
    if not ledger_path.exists():
        raise UserError(f"no ledger at {ledger_path}", hint="give the path a load used (--ledger)")
    target = Target(connection.base_url, connection.fingerprint)
    settled: list[Decision] = []
    unmatched: list[Decision] = []
    with Ledger.open(ledger_path) as ledger, ledger.exclusive():
        for d in decisions:
            done = ledger.resolve(target, d.kind, d.key, kayse_id=d.kayse_id)  # type: ignore[arg-type]
            (settled if done else unmatched).append(d)
    return settled, unmatched


# ---- checking a mapping against the account ---------------------------------------------


@dataclass(frozen=True)
class MappingCheck:
    """The mapping's allowed case types and statuses against what the Kayse account has."""

    account_types: dict[str, list[str]]  # case type → its statuses
    unknown_types: list[str]  # allowed by the mapping, unknown to Kayse: every such case is refused
    unknown_statuses: list[str]  # allowed by the mapping, unknown to Kayse: created on first use (G13)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.REJECTED if self.unknown_types else ExitCode.OK


def check_mapping(mapping: Path, *, connection: Connection) -> MappingCheck:
    """One request (`GET /metadata`): does the account know the case types the mapping allows?
    Run it before a first load; the mapping's `allowed` lists are then what to paste in."""
    from pipeline.kayse.client import KayseClient
    from pipeline.mapping import load_mapping

    spec = load_mapping(mapping)
    with KayseClient(connection.base_url, connection.api_key) as client:
        case_types = client.metadata.case_types()
    account = {str(t.get("name")): [str(s.get("name")) for s in t.get("statuses") or []] for t in case_types}
    known_statuses = {s.lower() for statuses in account.values() for s in statuses}
    known_types = {t.lower() for t in account}
    return MappingCheck(
        account_types=account,
        unknown_types=[t for t in spec.case_types if t.lower() not in known_types],
        unknown_statuses=[s for s in spec.case_statuses if s.lower() not in known_statuses],
    )


@dataclass(frozen=True)
class Quota:
    """The key's rate-limit state right now, as the API reported it on one cheap request."""

    limit: int
    remaining: int
    resets_in_seconds: float


def check_quota(connection: Connection) -> Quota | None:
    """One GET (`/metadata`) to read `X-RateLimit-*`: what is left of this hour's requests.
    None when the API sent no rate-limit headers."""
    import time

    from pipeline.kayse.client import KayseClient

    with KayseClient(connection.base_url, connection.api_key) as client:
        client.metadata.case_types()
        state = client.rate_limit
    if state is None or state.limit is None or state.remaining is None:
        return None
    return Quota(state.limit, state.remaining, state.seconds_until_reset(time.time()) or 0.0)


# ---- extracting a legacy CRM (Axiomatic) -------------------------------------------------

AXIOMATIC_KEY_ENV = "AXIOMATIC_API_KEY"


def axiomatic_api_key(key_file: Path | None) -> str:
    """The Axiomatic key from `key_file`, else $AXIOMATIC_API_KEY: never a flag value."""
    import os

    if key_file is not None:
        try:
            key = key_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise UserError(f"cannot read the API key file {key_file}: {error.strerror}") from None
        if not key:
            raise UserError(f"the API key file {key_file} is empty")
        return key
    key = os.environ.get(AXIOMATIC_KEY_ENV, "").strip()
    if not key:
        raise UserError(
            f"no Axiomatic API key: looked in --api-key-file (not given) and ${AXIOMATIC_KEY_ENV} (not set)",
            hint="a key with the read:crm scope (Settings → API keys in Axiomatic): "
            f"export {AXIOMATIC_KEY_ENV}=ak_… or use --api-key-file PATH",
        )
    return key


def extract_axiomatic(
    base_url: str,
    entity_id: str,
    out_dir: Path,
    *,
    api_key: str | None = None,
    api_key_file: Path | None = None,
    timelines: bool = False,
    max_wait: float | None = None,
    observer: Any = None,
) -> AxiomaticExtract:
    """Read one Axiomatic entity's CRM into `out_dir` (CSV per resource + extract.json), read-only.

    The key is `api_key`, else read from `api_key_file`, else $AXIOMATIC_API_KEY."""
    from pipeline.extract.axiomatic import extract

    key = api_key if api_key is not None else axiomatic_api_key(api_key_file)
    return extract(
        base_url, key, entity_id, out_dir, timelines=timelines, max_wait=max_wait, observer=observer
    )
