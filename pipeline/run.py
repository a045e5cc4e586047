"""The orchestrator: the whole flow on one page.

extract → map → validate → plan → load → report. Each function here calls the stages in
order and hands each the previous one's value; the stages never call each other. The CLI and
any Python caller (a cron script, an Airflow or Dagster task) go through these functions, and
every flag of the CLI is a keyword here, so a script never has to redo what the CLI does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import plan as plan_stage
from pipeline.ledger import Ledger, Target
from pipeline.model import (
    ENTITY_KINDS,
    Decision,
    LoadOutcome,
    MappingCheck,
    PlanOutcome,
    Quota,
    RollbackSummary,
    RunRow,
    UncertainRow,
    UserError,
    ValidationOutcome,
    ValidationResult,
)
from pipeline.settings import Connection

if TYPE_CHECKING:  # the loader pulls in the HTTP client: `validate` need not pay for it
    from pipeline.load import LoadObserver

__all__ = [
    "Decision",
    "LoadOutcome",
    "MappingCheck",
    "PlanOutcome",
    "Quota",
    "RollbackSummary",
    "ValidationOutcome",
    "check_mapping",
    "default_ledger_path",
    "list_uncertain",
    "load",
    "plan",
    "read_quota",
    "resolve",
    "rollback",
    "runs",
    "validate",
]

# ---- validate ----------------------------------------------------------------------------


def validate(
    sources: list[Path],
    mapping: Path,
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    header_row: int | None = None,
    report_dir: Path | None = None,
    today: date | None = None,
) -> ValidationOutcome:
    """Read the sources, map them with the mapping file and check every row: no network.

    `sources` are files; for a mapping with `tables:` (clients and cases in separate files),
    the folder that holds the tables and/or the table files themselves.

    extract → map → validate, each stage handed the previous one's value. `encoding` and
    `delimiter` override what the CSV reader detects; `today` (default: the local date) is the
    limit for dates of birth in the future. With `report_dir`, the report files are written
    there and named in the outcome's `report_files`.
    """
    result = _checked(
        sources,
        mapping,
        sheet=sheet,
        encoding=encoding,
        delimiter=delimiter,
        header_row=header_row,
        today=today,
    )
    written: list[Path] = []
    if report_dir is not None:
        from pipeline.report.validation import write_validation_report

        written = write_validation_report(result, report_dir)
    values = {f.name: getattr(result, f.name) for f in fields(ValidationResult) if f.init}
    return ValidationOutcome(**values, report_files=tuple(written))


def _checked(
    sources: list[Path],
    mapping: Path,
    *,
    sheet: str | None,
    encoding: str | None,
    delimiter: str | None,
    header_row: int | None,
    today: date | None,
) -> ValidationResult:
    from pipeline.extract import read_sources, read_tables
    from pipeline.mapping import apply_mapping, load_mapping
    from pipeline.model import Extracted
    from pipeline.validate import validate as validate_rows

    spec = load_mapping(mapping)
    options: dict[str, Any] = {
        "sheet": sheet,
        "encoding": encoding,
        "delimiter": delimiter,
        "header_row": header_row,
    }
    extracted: list[Extracted] | dict[str, Extracted]
    if spec.linked:  # clients and cases in separate tables: a folder, or the table files
        extracted = read_tables(sources, spec.tables, **options)
    else:
        extracted = read_sources(sources, **options)
    mapped = apply_mapping(extracted, spec)
    return validate_rows(mapped, spec, today=today)


# ---- plan and load ---------------------------------------------------------------------


def default_ledger_path(mapping: Path) -> Path:
    """Next to the mapping: one ledger per mapping, so each source system keeps its own ids."""
    return mapping.with_name(mapping.stem + ".ledger.sqlite")


def _inputs(validation: ValidationResult) -> dict[str, Any]:
    """The files actually read (a folder's tables, not the folder), by name and content hash."""
    sources = [Path(info.path) for info in validation.sources]

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
    connection: Connection | None = None,
    base_url: str | None = None,
    ledger_path: Path | None = None,
    campaign: bool = False,
    batch_size: int = plan_stage.DEFAULT_BATCH_SIZE,
    check_quota: bool = False,
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    header_row: int | None = None,
    today: date | None = None,
) -> PlanOutcome:
    """What a load would send, from the ledger alone: no network unless `check_quota`.

    With a `connection`, the plan is for its target (base URL and key). Without one — planning
    with no key at hand — give `base_url`: the ledger's one target for that URL is used, or, if
    it has none or several, a first load is planned. `check_quota` spends one read-only request
    (so it needs the connection) to learn what is left of this hour's quota.
    """
    if connection is None and base_url is None:
        raise ValueError("plan needs a connection, or the base_url to plan for without a key")
    if check_quota and connection is None:
        raise UserError(
            "checking the quota needs the API key",
            hint="export KAYSE_API_KEY=… or use --api-key-file PATH",
        )
    validation = _checked(
        sources,
        mapping,
        sheet=sheet,
        encoding=encoding,
        delimiter=delimiter,
        header_row=header_row,
        today=None,
    )
    with Ledger.open(ledger_path or default_ledger_path(mapping)) as ledger:
        if connection is not None:
            target = Target(connection.base_url, connection.fingerprint)
        else:
            assert base_url is not None
            known = ledger.targets(base_url)
            target = known[0] if len(known) == 1 else Target(base_url, "no key given")
        snapshot = ledger.snapshot(target)
    the_plan = plan_stage.build_plan(
        validation, snapshot, campaign=campaign, batch_size=batch_size, today=today
    )
    quota = read_quota(connection) if check_quota and connection is not None else None
    return PlanOutcome(validation, the_plan, quota)


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
    report_dir: Path | None = None,
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    header_row: int | None = None,
    today: date | None = None,
    observer: LoadObserver | None = None,
    on_wait: Any = None,
) -> LoadOutcome:
    """Validate, plan and (unless `dry_run`) load into Kayse, recording every step in the ledger.

    Safe to rerun at any time with the same inputs: what is already in Kayse is skipped, what a
    crash left half-done is finished, and nothing is created twice. With `report_dir`, the
    validation files (and, unless `dry_run`, load.json and failed.csv) are written there."""
    from pipeline import load as load_stage
    from pipeline.kayse import KayseClient

    validation = _checked(
        sources,
        mapping,
        sheet=sheet,
        encoding=encoding,
        delimiter=delimiter,
        header_row=header_row,
        today=None,
    )
    target = Target(connection.base_url, connection.fingerprint)
    result = None
    with Ledger.open(ledger_path or default_ledger_path(mapping)) as ledger, ledger.exclusive():
        snapshot = ledger.snapshot(target)
        the_plan = plan_stage.build_plan(
            validation, snapshot, campaign=campaign, batch_size=batch_size, today=today
        )
        if not dry_run:
            client = KayseClient(connection.base_url, connection.api_key, max_wait=max_wait, on_wait=on_wait)
            run_id = ledger.start_run(target, "load", _inputs(validation), the_plan.total_requests)
            try:
                result = load_stage.execute(the_plan, client, ledger, target, run_id, observer)
            finally:
                client.close()
            if result.outcome == "ok" and validation.rows_rejected:
                result.outcome = "rejected"  # loaded all it could; some rows never got past validation
            counts = {name: vars(step) for name, step in result.steps.items()}
            ledger.finish_run(run_id, result.outcome, counts, result.requests_sent)
    written: list[Path] = []
    if report_dir is not None:
        from pipeline.report.load import write_load_report
        from pipeline.report.validation import write_validation_report

        written = write_validation_report(validation, report_dir)
        if result is not None:
            written += write_load_report(result, the_plan, report_dir)
    return LoadOutcome(validation, the_plan, result, tuple(written))


# ---- the ledger's history, and undoing a run --------------------------------------------


def _existing_ledger(ledger_path: Path) -> Ledger:
    """Open a ledger a load made. Reading or settling a ledger that is not there must not
    create an empty one, which would only hide a mistyped path."""
    if not ledger_path.exists():
        raise UserError(
            f"no ledger at {ledger_path}", hint="give the path a load used (--ledger), or load first"
        )
    return Ledger.open(ledger_path)


def runs(ledger_path: Path, *, limit: int = 50) -> list[RunRow]:
    """The ledger's last `limit` runs, newest first: when, which inputs, what happened."""
    with _existing_ledger(ledger_path) as ledger:
        return ledger.runs(limit)


def rollback(run_id: int, *, connection: Connection, ledger_path: Path) -> RollbackSummary:
    """Delete from Kayse what run `run_id` created (cases first, then their clients), and forget
    it in the ledger, so the next load would create it afresh."""
    from pipeline.kayse import KayseClient

    target = Target(connection.base_url, connection.fingerprint)
    with _existing_ledger(ledger_path) as ledger, ledger.exclusive():
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


def list_uncertain(ledger_path: Path, *, template: Path | None = None) -> list[UncertainRow]:
    """Records whose create was sent but whose answer was lost. With `template`, also write them
    there as a decisions CSV for the operator to fill in and pass to `resolve(from_csv=...)`."""
    with _existing_ledger(ledger_path) as ledger:
        rows = ledger.uncertain()
    if template is not None:
        from pipeline.report.decisions import write_decisions_template

        write_decisions_template(rows, template)
    return rows


def resolve(
    decisions: Sequence[Decision] = (),
    *,
    connection: Connection,
    ledger_path: Path,
    from_csv: Path | None = None,
) -> tuple[list[Decision], list[Decision]]:
    """Apply the operator's decisions (given, and/or read from a decisions CSV) for
    `connection`'s target; returns (settled, not matched)."""
    decisions = list(decisions)
    if from_csv is not None:
        from pipeline.report.decisions import read_decisions

        decisions += read_decisions(from_csv)
    for d in decisions:
        if d.kind not in ENTITY_KINDS:
            raise UserError(f"unknown kind {d.kind!r}", hint=f"one of {', '.join(ENTITY_KINDS)}")
    target = Target(connection.base_url, connection.fingerprint)
    settled: list[Decision] = []
    unmatched: list[Decision] = []
    with _existing_ledger(ledger_path) as ledger, ledger.exclusive():
        for d in decisions:
            done = ledger.resolve(target, d.kind, d.key, kayse_id=d.kayse_id)  # type: ignore[arg-type]
            (settled if done else unmatched).append(d)
    return settled, unmatched


# ---- checking a mapping and the quota against the account --------------------------------


def check_mapping(mapping: Path, *, connection: Connection) -> MappingCheck:
    """One request (`GET /metadata`): does the account know the case types the mapping allows?
    Run it before a first load; the mapping's `allowed` lists are then what to paste in."""
    from pipeline.kayse import KayseClient
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


def read_quota(connection: Connection) -> Quota | None:
    """One GET (`/metadata`) to read `X-RateLimit-*`: what is left of this hour's requests.
    None when the API sent no rate-limit headers."""
    import time

    from pipeline.kayse import KayseClient

    with KayseClient(connection.base_url, connection.api_key) as client:
        client.metadata.case_types()
        state = client.rate_limit
    if state is None or state.limit is None or state.remaining is None:
        return None
    return Quota(state.limit, state.remaining, state.seconds_until_reset(time.time()) or 0.0)
