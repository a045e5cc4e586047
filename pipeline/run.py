"""The orchestrator: the whole flow on one page.

extract → map → validate → plan → load → report. Each function here calls the stages in
order and hands each the previous one's value; the stages never call each other. The CLI and
any Python caller (a cron script, an Airflow or Dagster task) go through these functions, and
every flag of the CLI is a keyword here, so a script never has to redo what the CLI does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import plan as plan_stage
from pipeline.ledger import Ledger, Target
from pipeline.mapping_draft import Draft
from pipeline.model import (
    ENTITY_KINDS,
    SOURCE_FILE,
    SOURCE_ROW,
    AxiomaticExtract,
    CrmPushOutcome,
    Decision,
    ExitCode,
    LedgerSnapshot,
    LoadOutcome,
    MappingCheck,
    NotifyOutcome,
    Plan,
    PlanOutcome,
    Quota,
    RollbackPlan,
    RollbackSummary,
    RunRow,
    UncertainMessage,
    UncertainRow,
    UserError,
    ValidationOutcome,
    ValidationResult,
    printable,
    storage_problem,
)
from pipeline.settings import Connection, read_api_key

if TYPE_CHECKING:  # the loader pulls in the HTTP client: `validate` need not pay for it
    from pipeline.interrupts import SignalGuard
    from pipeline.kayse import KayseClient
    from pipeline.load import LoadObserver

__all__ = [
    "AxiomaticExtract",
    "Decision",
    "LoadOutcome",
    "MappingCheck",
    "PlanOutcome",
    "Quota",
    "RollbackPlan",
    "RollbackSummary",
    "ValidationOutcome",
    "axiomatic_api_key",
    "check_mapping",
    "crm_integrations",
    "crm_outcome_types",
    "crm_pull",
    "crm_push",
    "default_ledger_path",
    "draft_mapping",
    "extract_axiomatic",
    "list_uncertain",
    "list_uncertain_messages",
    "load",
    "notify",
    "parse_max_rejected",
    "plan",
    "read_quota",
    "resolve",
    "resolve_message",
    "rollback",
    "runs",
    "validate",
    "without_lock_files",
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
        reports=report_dir is not None,
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
    reports: bool = False,
) -> ValidationResult:
    from pipeline.extract import read_sources, read_tables
    from pipeline.mapping import apply_mapping, load_mapping
    from pipeline.model import Extracted

    spec = load_mapping(mapping)
    sources, skipped = without_lock_files(sources)
    options: dict[str, Any] = {
        "sheet": sheet,
        "encoding": encoding,
        "delimiter": delimiter,
        "header_row": header_row,
    }
    extracted: list[Extracted] | dict[str, Extracted]
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(_import_later_stages, reports)
        if spec.linked:  # clients and cases in separate tables: a folder, or the table files
            extracted = read_tables(sources, spec.tables, **options)
        else:
            extracted = read_sources(sources, **options)
    from pipeline.validate import validate as validate_rows

    mapped = apply_mapping(extracted, spec)
    result = validate_rows(mapped, spec, today=today)
    if skipped and result.sources:  # said where the summary lists how each file was read
        first = result.sources[0]
        notes = (*first.notes, *(lock_file_note(path) for path in skipped))
        result = dataclasses.replace(
            result, sources=(dataclasses.replace(first, notes=notes), *result.sources[1:])
        )
    return result


def _import_later_stages(reports: bool) -> None:
    """Import validation (and the report writers, if `reports`): run while the sources are
    parsed, it is off the critical path (the readers release the GIL), and the later imports
    find them loaded."""
    import pipeline.validate

    if reports:
        import pipeline.report.annotated
        import pipeline.report.html  # noqa: F401


LOCK_FILE_PREFIX = "~$"
"""Excel writes `~$name.xlsx` next to a workbook while it is open: a few bytes of owner name, no data."""


def without_lock_files(sources: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """The sources to read, and the Excel lock files among them (skipped: a folder's glob, say
    `exports/*.xlsx`, picks them up while someone has the workbook open)."""
    kept = [Path(p) for p in sources if not Path(p).name.startswith(LOCK_FILE_PREFIX)]
    skipped = [Path(p) for p in sources if Path(p).name.startswith(LOCK_FILE_PREFIX)]
    if skipped and not kept:
        raise UserError(
            "only Excel lock files were given: " + ", ".join(p.name for p in skipped),
            hint="name the workbook itself (without the leading ~$); close it in Excel if it is open",
        )
    return kept, skipped


def lock_file_note(path: Path) -> str:
    return f"skipped {path.name}: an Excel lock file (the workbook is open somewhere), not data"


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
        caps = ledger.bulk_caps(target)
    the_plan = plan_stage.build_plan(
        validation, snapshot, campaign=campaign, batch_size=batch_size, bulk_caps=caps, today=today
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
    max_rejected: str | int | None = None,
    on_start: Callable[[int, Plan], None] | None = None,
) -> LoadOutcome:
    """Validate, plan and (unless `dry_run`) load into Kayse, recording every step in the ledger.

    Safe to rerun at any time with the same inputs: what is already in Kayse is skipped, what a
    crash left half-done is finished, and nothing is created twice. With `report_dir`, the
    validation files (and, unless `dry_run`, load.json, failed.csv, success.csv and report.html
    with the load's steps) are written there.

    Called in the main thread, the first SIGINT or SIGTERM stops the load cleanly: a rate-limit
    wait ends at once, a request in flight is finished and recorded, and the run is recorded
    "stopped" (outcome "stopped", exit 3); nothing becomes uncertain. A second signal stops at
    once with a `UserError` (exit 3): the run is recorded "interrupted", and a request in
    flight then is uncertain, as it truly is.

    `max_rejected` (a count, or a share like "5%") refuses a bad export before anything is sent:
    more rejected rows than that raise a UserError with exit code 5 (the validation report is
    still written). `on_start(run_id, plan)` is called once the run is recorded, before the
    first request, e.g. for a log's start line."""
    from pipeline import load as load_stage

    limit = parse_max_rejected(max_rejected)
    validation = _checked(
        sources,
        mapping,
        sheet=sheet,
        encoding=encoding,
        delimiter=delimiter,
        header_row=header_row,
        today=None,
    )
    if limit is not None and _over_limit(validation, limit):
        if report_dir is not None:
            from pipeline.report.validation import write_validation_report

            write_validation_report(validation, report_dir)
        raise _too_many_rejected(validation, str(max_rejected), report_dir)
    target = Target(connection.base_url, connection.fingerprint)
    result = None
    with Ledger.open(ledger_path or default_ledger_path(mapping)) as ledger, ledger.exclusive():
        snapshot = ledger.snapshot(target)
        the_plan = plan_stage.build_plan(
            validation,
            snapshot,
            campaign=campaign,
            batch_size=batch_size,
            bulk_caps=ledger.bulk_caps(target),
            today=today,
        )
        if not dry_run:
            # Which client each case goes with, before any is sent: what a rollback must respect.
            links = {op.key: op.client_key for op in the_plan.cases if op.client_key}
            if links:
                ledger.record_case_clients(target, links)
            run_id = ledger.start_run(target, "load", _inputs(validation), the_plan.total_requests)
            if on_start is not None:
                on_start(run_id, the_plan)
            with _guarded_client(
                connection,
                ledger,
                run_id,
                max_wait=max_wait,
                on_wait=on_wait,
                counts=dict,
                in_flight="the records of a request in flight are uncertain",
                hint="`kayse-etl uncertain` lists them to look up; rerun to load the rest",
            ) as (client, guard):
                result = load_stage.execute(
                    the_plan, client, ledger, target, run_id, observer, check_stop=guard.check
                )
            if result.outcome == "ok" and validation.rows_rejected:
                result.outcome = "rejected"  # loaded all it could; some rows never got past validation
            counts = {name: vars(step) for name, step in result.steps.items()}
            ledger.finish_run(run_id, result.outcome, counts, result.requests_sent)
    written: list[Path] = []
    report_error = None
    if report_dir is not None:
        from pipeline.report.load import write_load_report
        from pipeline.report.validation import write_validation_report

        try:
            written = write_validation_report(validation, report_dir)
            if result is not None:
                # report.html is written again, now with the load's steps: listed once
                written += [
                    path
                    for path in write_load_report(result, the_plan, report_dir, validation=validation)
                    if path not in written
                ]
        except OSError as error:
            if result is None:
                raise  # nothing was sent: the failure is the whole story
            # The requests went out and the ledger holds their answers: the load's outcome
            # stands, and the files' failure is told on its own.
            problem = storage_problem(error, f"the report folder {printable(report_dir)}")
            report_error = (
                problem[0] if problem else f"{error.strerror or error}: {printable(error.filename)}"
            )
    return LoadOutcome(validation, the_plan, result, tuple(written), report_error)


@contextlib.contextmanager
def _guarded_client(
    connection: Connection,
    ledger: Ledger,
    run_id: int,
    *,
    max_wait: float | None,
    on_wait: Any,
    counts: Callable[[], dict[str, Any]],
    in_flight: str,
    hint: str,
) -> Iterator[tuple[KayseClient, SignalGuard]]:
    """A Kayse client for a recorded run (a load or a notify), under a `SignalGuard`: the first
    Ctrl-C / SIGTERM ends a wait at once and stops before the next request (the caller records
    "stopped"); a second forces a stop, recorded "interrupted", with the request in flight
    uncertain (`in_flight` says what that leaves). Any other failure also ends the run
    "interrupted" in the history, and the error itself reaches the caller unchanged."""
    from pipeline.interrupts import ForcedStop, SignalGuard
    from pipeline.kayse import KayseClient

    with SignalGuard() as guard:
        client = KayseClient(
            connection.base_url,
            connection.api_key,
            max_wait=max_wait,
            on_wait=on_wait,
            sleep=guard.sleep,
        )
        try:
            yield client, guard
        except ForcedStop as forced:
            ledger.finish_run(run_id, "interrupted", counts(), client.requests_sent)
            raise UserError(f"{forced}: {in_flight}", hint=hint, exit_code=ExitCode.STOPPED) from None
        except BaseException:
            # Even if the ledger cannot take the note, the error is what the caller sees.
            with contextlib.suppress(Exception):
                ledger.finish_run(run_id, "interrupted", counts(), client.requests_sent)
            raise
        finally:
            client.close()


_MAX_REJECTED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


def parse_max_rejected(value: str | int | None) -> tuple[float, bool] | None:
    """`--max-rejected`: "20" (rows) or "5%" (of the rows read) → (number, is_share)."""
    if value is None:
        return None
    match = _MAX_REJECTED.match(str(value))
    if match is None or (not match.group(2) and "." in match.group(1)):
        raise UserError(
            f"--max-rejected must be a number of rows or a share like 5%, not {value!r}",
            hint="e.g. --max-rejected 20 or --max-rejected 2.5%",
        )
    number, is_share = float(match.group(1)), bool(match.group(2))
    if is_share and number > 100:
        raise UserError(f"--max-rejected {value} is more than 100%", hint="give a share from 0% to 100%")
    return number, is_share


def _over_limit(validation: ValidationResult, limit: tuple[float, bool]) -> bool:
    number, is_share = limit
    if is_share:
        return validation.rows_rejected * 100 > number * validation.rows_read
    return validation.rows_rejected > number


def _too_many_rejected(validation: ValidationResult, given: str, report_dir: Path | None) -> UserError:
    from pipeline.report.nightly import render_reasons

    share = validation.rows_rejected / validation.rows_read * 100 if validation.rows_read else 0.0
    where = (
        f"see rejects.csv in {report_dir}"
        if report_dir is not None
        else "run `kayse-etl validate` with --report-dir DIR for rejects.csv"
    )
    return UserError(
        f"too many rows rejected: {validation.rows_rejected:,} of {validation.rows_read:,} ({share:.1f}%), "
        f"more than --max-rejected {given}; nothing was sent. Mostly: {render_reasons(validation)}",
        hint=f"{where}; fix the export (or raise --max-rejected) and run again",
        exit_code=ExitCode.TOO_MANY_REJECTED,
    )


# ---- the ledger's history, and undoing a run --------------------------------------------


def _existing_ledger(ledger_path: Path) -> Ledger:
    """Open a ledger a load made. Reading or settling a ledger that is not there must not
    create an empty one, which would only hide a mistyped path."""
    return Ledger.open(ledger_path, create=False)


def runs(ledger_path: Path, *, limit: int = 50) -> list[RunRow]:
    """The ledger's last `limit` runs, newest first: when, which inputs, what happened."""
    with _existing_ledger(ledger_path) as ledger:
        return ledger.runs(limit)


def rollback(
    run_id: int,
    *,
    connection: Connection,
    ledger_path: Path,
    with_dependent_cases: bool = False,
    confirm: Callable[[RollbackPlan], bool] | None = None,
) -> RollbackSummary:
    """Delete from Kayse what run `run_id` created (cases first, then their clients), and forget
    it in the ledger, so the next load would create it afresh.

    A client that a case of another run is linked to is kept (a case never loses its client),
    unless `with_dependent_cases`: then those cases are deleted too. `confirm` is shown what
    will be deleted, with counts, before anything is; it returns False to cancel."""
    from pipeline.interrupts import SignalGuard, StopRequested
    from pipeline.kayse import KayseClient

    target = Target(connection.base_url, connection.fingerprint)
    with _existing_ledger(ledger_path) as ledger, ledger.exclusive(), SignalGuard() as guard:
        run_target = ledger.run_target(run_id)
        if run_target is None:
            raise UserError(
                f"no run {run_id} in {printable(ledger_path)}", hint="see `kayse-etl runs --ledger ...`"
            )
        if run_target != target:
            raise UserError(
                f"run {run_id} loaded into {run_target}, not {target}",
                hint="set KAYSE_BASE_URL / KAYSE_API_KEY to the run's target",
            )
        created = ledger.created_by_run(target, run_id)
        client = KayseClient(connection.base_url, connection.api_key, sleep=guard.sleep)
        try:
            run_clients = dict(created.get("client", []))
            _learn_unlinked_cases(ledger, client, target, run_id, bool(run_clients))
            needing = ledger.cases_needing(target, run_id, run_clients)
            dependents = (
                [(key, kid) for key, kid, _, _ in needing if kid is not None] if with_dependent_cases else []
            )
            kept = {
                client_key for _, kid, _, client_key in needing if kid is None or not with_dependent_cases
            }
            per_run: dict[int, int] = {}
            for _, _, other_run, _ in needing:
                per_run[other_run] = per_run.get(other_run, 0) + 1
            doomed = {
                "case": created.get("case", []) + dependents,
                "client": [(key, kid) for key, kid in run_clients.items() if key not in kept],
            }
            left = {kind: len(created.get(kind, [])) for kind in ("case_list", "campaign")}
            preview = RollbackPlan(
                run_id,
                {kind: len(records) for kind, records in doomed.items()},
                per_run,
                len(kept),
                with_dependent_cases,
                left,
            )
            if confirm is not None and not confirm(preview):
                raise UserError(
                    f"rollback of run {run_id} cancelled: nothing was deleted",
                    hint="run it again and answer yes (or add --yes) to delete them",
                    exit_code=ExitCode.REJECTED,
                )
            deleted, failed = _delete(ledger, client, target, doomed, run_id, guard.check, StopRequested)
        finally:
            client.close()
    return RollbackSummary(
        run_id, deleted, failed, left, len(kept), per_run, with_dependent_cases and bool(dependents)
    )


def _learn_unlinked_cases(ledger: Ledger, client: Any, target: Target, run_id: int, needed: bool) -> None:
    """Cases a ledger of an older version recorded without their client: ask Kayse once per
    case and remember the answer, so the rollback keeps the clients they need."""
    from pipeline.kayse import RequestRejected

    unlinked = ledger.unlinked_cases(target, run_id) if needed else []
    links: dict[str, str] = {}
    for key, kayse_id, _ in unlinked:
        try:
            client_ids = client.cases.get(kayse_id).get("client_ids") or []
        except RequestRejected:  # gone from Kayse: it needs nothing
            continue
        known = ledger.keys_of(target, "client", [int(i) for i in client_ids])
        if known:
            links[key] = known[int(next(i for i in client_ids if int(i) in known))]
    if links:
        ledger.record_case_clients(target, links)


def _delete(
    ledger: Ledger,
    client: Any,
    target: Target,
    doomed: dict[str, list[tuple[str, int]]],
    run_id: int,
    check_stop: Callable[[], None],
    stop_error: type[Exception],
) -> tuple[dict[str, int], dict[str, int]]:
    """Delete the cases, then the clients, 500 at a time; the ledger forgets what is gone.
    Clients are deleted without `force`: should Kayse know a case linked to one that the ledger
    does not (linked in the web app), Kayse refuses it and it is counted as not deleted. A
    stop signal (`check_stop` raising `stop_error`) ends it between two requests."""
    deleters = (
        ("case", lambda ids: client.cases.bulk_delete(ids).deleted_ids),
        ("client", lambda ids: client.clients.bulk_delete(ids, force=False).deleted_ids),
    )
    deleted: dict[str, int] = {}
    failed: dict[str, int] = {}
    for kind, delete in deleters:
        records = doomed.get(kind, [])
        for start in range(0, len(records), 500):
            chunk = records[start : start + 500]
            try:
                check_stop()  # a signal stops between deletes; each delete is recorded
                gone = set(delete([kid for _, kid in chunk]))
            except stop_error as stop:
                raise UserError(
                    f"rollback of run {run_id} {getattr(stop, 'summary', 'stopped')}: "
                    f"{sum(deleted.values())} deleted so far",
                    hint="run the same rollback again to delete the rest",
                    exit_code=ExitCode.STOPPED,
                ) from None
            ledger.mark_deleted(target, kind, [key for key, kid in chunk if kid in gone])  # type: ignore[arg-type]
            deleted[kind] = deleted.get(kind, 0) + len(gone)
            failed[kind] = failed.get(kind, 0) + len(chunk) - len(gone)
    return deleted, failed


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
        snapshot = ledger.snapshot(target)
        for d in decisions:
            d = dataclasses.replace(d, key=_ledger_key(snapshot, d.kind, d.key))
            done = ledger.resolve(target, d.kind, d.key, kayse_id=d.kayse_id)  # type: ignore[arg-type]
            (settled if done else unmatched).append(d)
    return settled, unmatched


def _ledger_key(snapshot: LedgerSnapshot, kind: str, key: str) -> str:
    """The ledger's key for what the operator typed: clients and cases are keyed
    "<external_source>:<id>" (import:C-1001), and the id alone (C-1001) names the same record
    when exactly one external source has it."""
    known: dict[str, Any] = {"client": snapshot.clients, "case": snapshot.cases}.get(kind, {})
    if key in known or not known:
        return key
    candidates = [k for k in known if k.split(":", 1)[-1] == key]
    return candidates[0] if len(candidates) == 1 else key


# ---- checking a mapping and the quota against the account --------------------------------


def check_mapping(mapping: Path, *, connection: Connection) -> MappingCheck:
    """One request (`GET /metadata`): does the account know the case types the mapping allows?
    Run it before a first load; the mapping's `allowed` lists are then what to paste in."""
    from pipeline.mapping import load_mapping

    spec = load_mapping(mapping)
    account = account_case_types(connection)
    known_statuses = {s.lower() for statuses in account.values() for s in statuses}
    known_types = {t.lower() for t in account}
    return MappingCheck(
        account_types=account,
        unknown_types=[t for t in spec.case_types if t.lower() not in known_types],
        unknown_statuses=[s for s in spec.case_statuses if s.lower() not in known_statuses],
    )


def account_case_types(connection: Connection) -> dict[str, list[str]]:
    """One request (`GET /metadata`): the account's case types, each with its statuses."""
    from pipeline.kayse import KayseClient

    with KayseClient(connection.base_url, connection.api_key) as client:
        case_types = client.metadata.case_types()
    return {str(t.get("name")): [str(s.get("name")) for s in t.get("statuses") or []] for t in case_types}


def draft_mapping(
    source: Path,
    *,
    out: Path | None = None,
    force: bool = False,
    connection: Connection | None = None,
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    header_row: int | None = None,
) -> Draft:
    """Draft a commented mapping from a source's headers (and its type and status values).

    With a `connection`, the allowed case types and statuses come from the account (one
    request); without one, from the file itself, marked for a person to replace. With `out`,
    the draft is written there; an existing file is kept unless `force`.
    """
    from pipeline.extract import read_source
    from pipeline.mapping_draft import MAX_VALUES
    from pipeline.mapping_draft import draft_mapping as draft

    if out is not None and out.exists() and not force:
        raise UserError(
            f"{out} already exists", hint="choose another --out FILE, or add --force to replace it"
        )
    extracted = read_source(
        source, sheet=sheet, encoding=encoding, delimiter=delimiter, header_row=header_row
    )
    frame = extracted.frame
    headers = [c for c in frame.columns if c not in (SOURCE_FILE, SOURCE_ROW)]
    distinct = {
        column: [str(v) for v in frame[column].drop_nulls().unique(maintain_order=True).head(MAX_VALUES * 2)]
        for column in headers
    }
    account = account_case_types(connection) if connection is not None else None
    result = draft(headers, distinct, source_name=Path(source).name, account_types=account)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(result.text, encoding="utf-8")
    return result


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


# ---- messages to the clients of loaded cases ----------------------------------------------


def notify(
    ledger_path: Path,
    *,
    channel: str,
    message_file: Path,
    connection: Connection | None = None,
    base_url: str | None = None,
    subject: str | None = None,
    run_id: int | None = None,
    case_list: str | None = None,
    cases_csv: Path | None = None,
    send: bool = False,
    any_hour: bool = False,
    default_timezone: str = "America/New_York",
    max_wait: float | None = None,
    report_dir: Path | None = None,
    now: Any = None,
    observer: Any = None,
    on_wait: Any = None,
) -> NotifyOutcome:
    """Preview (default: no request at all) or, with `send`, send one SMS or email to each client
    of the selected cases: never twice, never to an opted-out client, and only 08:00–21:00 in the
    client's time zone unless `any_hour`. `now` (a callable returning an aware datetime) pins the
    clock. With a `connection`, the cases are those of its target (base URL and key). Without
    one — a preview with no key at hand — give `base_url`: the ledger's one target for that URL
    is used. With `report_dir`, notify.json and skipped.csv are written there.

    Called in the main thread, the first SIGINT or SIGTERM stops as `load` does: a wait ends at
    once, a message in flight is finished and recorded, and the run is recorded "stopped"
    (exit 3). Every end of a send run is recorded in the ledger, never left "running"."""
    from pipeline import notify as notify_stage
    from pipeline.load import QuietObserver

    if connection is None and base_url is None:
        raise ValueError("notify needs a connection, or the base_url to preview for without a key")
    url = connection.base_url if connection is not None else str(base_url)
    if channel not in ("sms", "email"):
        raise UserError(
            f"--channel must be sms or email, not {channel!r}", hint="--channel sms or --channel email"
        )
    text = notify_stage.read_message(message_file, channel, subject)  # type: ignore[arg-type]
    notify_stage.is_open(notify_stage.now_utc(), [default_timezone])  # an unknown zone: exit 2 now
    clock = now or notify_stage.now_utc
    if send and connection is None:
        raise UserError("--send needs the Kayse API key", hint="export KAYSE_API_KEY=… or use --api-key-file")
    with _existing_ledger(ledger_path) as ledger, ledger.exclusive():
        if connection is not None:
            target = Target(connection.base_url, connection.fingerprint)
        else:
            known = ledger.targets(url)
            if len(known) != 1:
                raise UserError(
                    f"the ledger has {len(known)} targets for {url}; say which key",
                    hint="export KAYSE_API_KEY=… or use --api-key-file",
                )
            target = known[0]
        cases = notify_stage.select_cases(
            ledger, target, run_id=run_id, case_list=case_list, cases_csv=cases_csv
        )
        outcome = NotifyOutcome(
            channel=text.channel,
            message_sha256=text.sha256,
            send=send,
            any_hour=any_hour,
            default_timezone=default_timezone,
            cases_selected=len(cases),
        )
        if not send:
            notify_stage.preview(ledger, target, cases, text, outcome, clock())
        else:
            assert connection is not None
            inputs = {
                "message": {"name": message_file.name, "sha256": text.sha256},
                "channel": text.channel,
                "selector": {
                    "run": run_id,
                    "case_list": case_list,
                    "cases_csv": cases_csv.name if cases_csv else None,
                },
                "any_hour": any_hour,
            }
            outcome.run_id = ledger.start_run(target, "notify", inputs, None)
            with _guarded_client(
                connection,
                ledger,
                outcome.run_id,
                max_wait=max_wait,
                on_wait=on_wait,
                counts=lambda: _message_counts(outcome),
                in_flight="a message in flight is uncertain",
                hint="`kayse-etl uncertain --ledger PATH` lists it; rerun to send the rest",
            ) as (client, guard):
                notify_stage.send(
                    ledger,
                    target,
                    outcome.run_id,
                    client,
                    cases,
                    text,
                    outcome,
                    clock,
                    observer or QuietObserver(),
                    check_stop=guard.check,
                )
            ledger.finish_run(
                outcome.run_id, outcome.outcome, _message_counts(outcome), outcome.requests_sent
            )
    if report_dir is not None:
        from pipeline.report.notify import write_notify_report

        write_notify_report(outcome, report_dir)
    return outcome


def _message_counts(outcome: NotifyOutcome) -> dict[str, int]:
    """A notify run's tally, as `kayse-etl runs` shows it."""
    return {
        "sent": len(outcome.sent),
        "skipped": len(outcome.skipped),
        "held": len(outcome.held),
        "uncertain": len(outcome.uncertain),
        "refused": len(outcome.failed),
    }


def list_uncertain_messages(ledger_path: Path) -> list[UncertainMessage]:
    """Messages whose send was made but whose answer was lost: the client may have received them."""
    with _existing_ledger(ledger_path) as ledger:
        return ledger.uncertain_messages()


def resolve_message(key: str, *, sent: bool, connection: Connection, ledger_path: Path) -> bool:
    """The operator's word on an uncertain message: it went out (`sent`), or resend it with the
    next run of the same text. False when no uncertain message has that key on this target."""
    with _existing_ledger(ledger_path) as ledger, ledger.exclusive():
        return ledger.resolve_message(Target(connection.base_url, connection.fingerprint), key, sent=sent)


# ---- CRM integrations and field mappings ---------------------------------------------------


def crm_integrations(*, connection: Connection) -> list[dict[str, Any]]:
    """The CRM integrations of the account (one GET)."""
    from pipeline import crm
    from pipeline.kayse import KayseClient

    with KayseClient(connection.base_url, connection.api_key) as client:
        return crm.integrations(client)


def crm_outcome_types(*, connection: Connection) -> list[dict[str, Any]]:
    """The outcome types usable in CRM mappings and campaign workflows (one GET)."""
    from pipeline import crm
    from pipeline.kayse import KayseClient

    with KayseClient(connection.base_url, connection.api_key) as client:
        return crm.outcome_types(client)


def crm_pull(*, connection: Connection, out: Path | None = None) -> list[dict[str, Any]]:
    """Kayse's CRM field mappings exactly as the API gives them (one GET); written to `out` as
    YAML (0600) when given."""
    from pipeline import crm
    from pipeline.kayse import KayseClient

    with KayseClient(connection.base_url, connection.api_key) as client:
        mappings = crm.pull(client)
    if out is not None:
        from pipeline.report.crm import write_mappings

        write_mappings(out, mappings)
    return mappings


def crm_push(mapping_file: Path, *, connection: Connection, yes: bool = False) -> CrmPushOutcome:
    """Check the whole file (exit 2 listing every problem, before any request), GET the
    difference, and with `yes` POST only what changed (one request; none when nothing did)."""
    from pipeline import crm
    from pipeline.kayse import KayseClient

    wanted = crm.read_mappings(mapping_file)
    with KayseClient(connection.base_url, connection.api_key) as client:
        return crm.push(client, wanted, yes=yes)


# ---- extracting a legacy CRM (Axiomatic) -------------------------------------------------

AXIOMATIC_KEY_ENV = "AXIOMATIC_API_KEY"


def axiomatic_api_key(key_file: Path | None) -> str:
    """The Axiomatic key from `key_file`, else $AXIOMATIC_API_KEY: never a flag value."""
    key = read_api_key(
        key_file,
        env=AXIOMATIC_KEY_ENV,
        service="Axiomatic",
        hint="a key with the read:crm scope (Settings → API keys in Axiomatic): "
        f"export {AXIOMATIC_KEY_ENV}=ak_… or use --api-key-file PATH",
    )
    assert key is not None  # required: a missing key raised
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
