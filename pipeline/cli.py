"""The `kayse-etl` command line: parse flags, call `pipeline.run`, print, exit.

No logic lives here beyond turning flags into library arguments and results into output and
exit codes (see the README): every stage is reached through `pipeline.run`, every text through
`pipeline.report`. The API key is never a flag: it comes from KAYSE_API_KEY or --api-key-file,
so it never shows in `ps` or shell history.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeline.model import Decision, ExitCode, Plan, UserError, printable, storage_problem

if TYPE_CHECKING:
    from pipeline.settings import Connection

app = typer.Typer(
    name="kayse-etl",
    help="Move leads and cases from spreadsheets and legacy CRMs into Kayse.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals could hold the API key
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _help_in_words() -> None:
    """Help that reads as words: typer prints a type beside every parameter (`<bool>` after a
    flag, `<list[Path]>` after the sources). A flag takes no value, so it shows none; a
    parameter given a metavar (PATH, N, DIR) shows only that."""
    from typer.core import TyperArgument, TyperOption

    option_type = TyperOption.display_type_rich
    argument_type = TyperArgument.display_type_rich

    def option_words(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag or self.count else option_type(self, ctx)

    def argument_words(self: TyperArgument, ctx: Any) -> str | None:
        return None if self.metavar is not None else argument_type(self, ctx)

    TyperOption.display_type_rich = option_words  # type: ignore[method-assign]
    TyperArgument.display_type_rich = argument_words  # type: ignore[method-assign,assignment]


_help_in_words()
mappings_app = typer.Typer(
    help="Write and check mapping files.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(mappings_app, name="mappings")


@dataclasses.dataclass
class _Session:
    """What the global options and --format asked for, read by `main` when a command fails."""

    quiet: bool = False
    verbose: bool = False
    format: str = "text"


SESSION = _Session()

Sources = Annotated[
    list[Path],
    typer.Argument(
        help="CSV or XLSX files to read; for a mapping with tables: the folder holding them (or the table files).",
        show_default=False,
        metavar="SOURCE",
    ),
]
MappingOpt = Annotated[
    Path, typer.Option("--mapping", "-m", help="Mapping file (YAML), see mappings/.", metavar="PATH")
]
SheetOpt = Annotated[
    str | None,
    typer.Option("--sheet", help="XLSX sheet name (default: the first visible worksheet).", metavar="NAME"),
]
EncodingOpt = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="Text encoding of CSV files, e.g. cp1252 or utf-16 (default: detected). Ignored for XLSX.",
        metavar="NAME",
    ),
]
DelimiterOpt = Annotated[
    str | None,
    typer.Option(
        "--delimiter",
        help="CSV delimiter: one character, or comma, semicolon, tab, pipe (default: detected).",
        metavar="D",
    ),
]
HeaderRowOpt = Annotated[
    int | None,
    typer.Option(
        "--header-row",
        min=1,
        help="XLSX: the header's row number, as Excel shows it (default: found).",
        metavar="N",
    ),
]


FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        help="text for a person, or json (errors too: {error, hint, exit_code} on stdout).",
        metavar="text|json",
    ),
]


def _check_format(value: str) -> None:
    if value not in ("text", "json"):
        raise UserError(
            f"--format must be text or json, not {value!r}", hint="use --format text or --format json"
        )
    SESSION.format = value


def _print_json(body: object) -> None:
    typer.echo(json.dumps(body, indent=2, ensure_ascii=False, default=str))


def _say(text: str, *, err: bool = False) -> None:
    """Words for a person: kept back under --quiet (errors and JSON are always printed)."""
    if not SESSION.quiet:
        typer.echo(text, err=err)


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("kayse-etl")
        except PackageNotFoundError:  # run from a source tree that was never installed
            number = "unknown (not installed)"
        typer.echo(f"kayse-etl {number}")
        raise typer.Exit()


_DEBUG_HANDLER_NAME = "kayse-etl --verbose"


def _client_debug_log() -> None:
    """The Kayse client's own log on stderr: one line per request (method, path, status, quota
    left), its waits and retries. It logs neither the key (the client redacts it) nor any
    field of a record."""
    log = logging.getLogger("pipeline.kayse")
    log.setLevel(logging.DEBUG)
    if not any(h.get_name() == _DEBUG_HANDLER_NAME for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_DEBUG_HANDLER_NAME)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)


@app.callback()
def _global_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Print only errors (and JSON with --format json): no progress, no summary."
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Also log each request the Kayse client sends (method, path, status) on stderr; "
            "never the key or personal data.",
        ),
    ] = False,
) -> None:
    SESSION.quiet, SESSION.verbose, SESSION.format = quiet, verbose, "text"
    if quiet and verbose:
        raise UserError("--quiet and --verbose contradict each other", hint="give one of them, or neither")
    if verbose:
        _client_debug_log()


# ---- validate (data side) ------------------------------------------------------------


@app.command(epilog="Exit codes: 0 every row valid; 1 some rows rejected; 2 usage or configuration problem.")
def validate(
    sources: Sources,
    mapping: MappingOpt,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    delimiter: DelimiterOpt = None,
    header_row: HeaderRowOpt = None,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            help="Write summary.json, rejects.csv, clients.csv, cases.csv, annotated.xlsx, report.html here.",
            metavar="DIR",
        ),
    ] = None,
    format: FormatOpt = "text",
) -> None:
    """Check a file against a mapping with no network: what would load, and what is wrong with the rest.

    Exit 0: every row is valid. 1: some rows were rejected. 2: a usage or configuration problem.
    """
    from pipeline import run
    from pipeline.report.validation import render_text, summary

    _check_format(format)
    outcome = run.validate(
        sources,
        mapping,
        sheet=sheet,
        encoding=encoding,
        delimiter=delimiter,
        header_row=header_row,
        report_dir=report_dir,
    )
    report = summary(outcome)
    if format == "json":
        _print_json(report)
    else:
        _say(render_text(outcome, report, rejects_written=report_dir is not None))
    if report_dir is not None:
        # with --format json, stdout stays pure JSON
        names = ", ".join(path.name for path in outcome.report_files)
        _say(f"Report written to {printable(report_dir)}: {printable(names)}", err=format == "json")
    global _NOTHING_LEFT_OPEN
    _NOTHING_LEFT_OPEN = True  # every report is written and closed; no ledger, no connection
    raise typer.Exit(int(outcome.exit_code))


# ---- sandbox (Kayse side) ------------------------------------------------------------


@app.command()
def sandbox(
    host: Annotated[
        str,
        typer.Option(
            help="Interface to listen on. Keep 127.0.0.1 unless you mean to share it.", metavar="HOST"
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 = any free port).", metavar="PORT")] = 8765,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="SQLite file for the sandbox's state, kept across restarts (default: in memory).",
            metavar="PATH",
        ),
    ] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key",
            help="A key to accept (repeatable). Default: only the demo key sandbox-demo-key.",
            show_default=False,
            metavar="KEY",
        ),
    ] = None,
    rate_limit: Annotated[
        int, typer.Option(help="Requests per window per key, as Kayse's 500/hour.", metavar="N")
    ] = 500,
    rate_window: Annotated[
        float, typer.Option(help="Rate-limit window in seconds (fixed window per key).", metavar="SECONDS")
    ] = 3600,
    bulk_max: Annotated[
        int,
        typer.Option(
            help="Most items accepted by one bulk upsert (more: 400 for the whole batch).", metavar="N"
        ),
    ] = 500,
    bulk_mode: Annotated[
        str,
        typer.Option(
            help="partial: bad bulk items are reported in failed[]; atomic: the first bad item fails the batch with 400.",
            metavar="partial|atomic",
        ),
    ] = "partial",
    faults: Annotated[
        str | None,
        typer.Option(
            help='Random faults on writes, e.g. "error=0.05,ratelimit=0.02,latency=0.2,lost=0.01,seed=7".',
            metavar="SPEC",
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Reject unknown fields and duplicate case_number values with 400."),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print a line per request.")] = False,
    format: FormatOpt = "text",
    axiomatic_port: Annotated[
        int | None,
        typer.Option(
            "--axiomatic-port",
            help="Also serve the local Axiomatic CRM (for `extract axiomatic`) on this port, "
            "e.g. 8766 (0 = any free port). Default: off.",
            show_default=False,
            metavar="PORT",
        ),
    ] = None,
) -> None:
    """Run a local Kayse-compatible API (for rehearsals, the demo and the tests), and with
    --axiomatic-port a local Axiomatic CRM beside it, so a whole migration can be rehearsed."""
    # The sandboxes are tools of their own, not stages of the flow: the CLI only starts them.
    from pipeline.sandbox.server import SandboxConfig, serve

    _check_format(format)

    def announce(line: str) -> None:  # with --format json: one JSON object per line
        typer.echo(json.dumps({"message": line}, ensure_ascii=False) if format == "json" else line)

    axiomatic = None
    if axiomatic_port is not None:
        from pipeline.axiomatic_sandbox import AxiomaticConfig, start_in_thread
        from pipeline.axiomatic_sandbox.server import describe_startup

        axiomatic_config = AxiomaticConfig(host=host, port=axiomatic_port)
        axiomatic = start_in_thread(axiomatic_config)
        for line in describe_startup(axiomatic_config, axiomatic.port)[:-1]:
            announce(line)
    try:
        serve(
            SandboxConfig(
                host=host,
                port=port,
                db_path=str(db) if db else None,
                api_keys=tuple(api_key or ()),
                rate_limit=rate_limit,
                rate_window=rate_window,
                bulk_max=bulk_max,
                bulk_mode=bulk_mode,
                faults=faults,
                strict=strict,
            ),
            announce=announce,
            log_requests=not (quiet or SESSION.quiet),
        )
    finally:
        if axiomatic is not None:
            axiomatic.stop()
            announce("local Axiomatic stopped")


# ---- plan / load / runs (loader) -----------------------------------------------------

LedgerOpt = Annotated[
    Path | None,
    typer.Option("--ledger", help="ID ledger (SQLite). Default: next to the mapping file.", metavar="PATH"),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url", help="Kayse API base URL (default: $KAYSE_BASE_URL, else production).", metavar="URL"
    ),
]
InsecureHttpFlag = Annotated[
    bool,
    typer.Option(
        "--allow-insecure-http",
        help="Allow a plain http:// base URL to a host that is not this machine (sends the key unencrypted; "
        "or set KAYSE_ALLOW_INSECURE_HTTP=1).",
    ),
]
KeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--api-key-file", help="Read the API key from this file (default: $KAYSE_API_KEY).", metavar="PATH"
    ),
]
ExistingLedgerOpt = Annotated[Path, typer.Option("--ledger", help="The ID ledger.", metavar="PATH")]
CampaignFlag = Annotated[
    bool,
    typer.Option(
        "--campaign",
        help="Also create the mapping's campaign on each list. Off by default: it starts outreach.",
    ),
]
BatchOpt = Annotated[
    int, typer.Option("--batch-size", min=1, max=500, help="Records per bulk request (1-500).", metavar="N")
]
MaxWaitOpt = Annotated[
    float | None,
    typer.Option(
        "--max-wait",
        help="Longest wait (seconds) for the rate-limit window before stopping (exit 3).",
        metavar="SECONDS",
    ),
]
PlainFlag = Annotated[bool, typer.Option("--plain", help="Log lines instead of a progress bar.")]
ReadLedgerOpt = Annotated[Path, typer.Option("--ledger", help="The ID ledger to read.", metavar="PATH")]


def _optional_connection(
    base_url: str | None, api_key_file: Path | None, *, allow_insecure_http: bool, required: bool
) -> tuple[str, Connection | None]:
    """The base URL, and a connection only when a key is at hand: for the commands that work
    without one (a plan, a notify preview) unless `required` (--check-quota, --send)."""
    from pipeline.settings import Connection, resolve_api_key, resolve_base_url

    url = resolve_base_url(base_url, allow_insecure_http=allow_insecure_http)
    key = resolve_api_key(api_key_file, required=required)
    return url, Connection(url, key, allow_insecure_http=allow_insecure_http) if key else None


@app.command()
def plan(
    sources: Sources,
    mapping: MappingOpt,
    ledger: LedgerOpt = None,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    delimiter: DelimiterOpt = None,
    header_row: HeaderRowOpt = None,
    campaign: CampaignFlag = False,
    batch_size: BatchOpt = 500,
    base_url: BaseUrlOpt = None,
    allow_insecure_http: InsecureHttpFlag = False,
    api_key_file: KeyFileOpt = None,
    check_quota: Annotated[
        bool,
        typer.Option(
            "--check-quota", help="Spend one request to read how much of this hour's quota is left."
        ),
    ] = False,
    format: FormatOpt = "text",
) -> None:
    """Show what a load would send, and how many API requests and hours that takes. Sends nothing
    (with --check-quota: one read-only request)."""
    from pipeline import run
    from pipeline.report.load import plan_summary, render_plan
    from pipeline.report.text import render_rows_valid

    _check_format(format)
    # Planning needs no key (the ledger knows its targets); only --check-quota sends a request.
    url, connection = _optional_connection(
        base_url, api_key_file, allow_insecure_http=allow_insecure_http, required=check_quota
    )
    outcome = run.plan(
        sources,
        mapping,
        connection=connection,
        base_url=url,
        ledger_path=ledger,
        campaign=campaign,
        batch_size=batch_size,
        check_quota=check_quota,
        sheet=sheet,
        encoding=encoding,
        delimiter=delimiter,
        header_row=header_row,
    )
    if format == "json":
        body = plan_summary(outcome.plan)
        if outcome.quota is not None:
            body["quota"] = vars(outcome.quota)
        _print_json(body)
    else:
        _say(render_rows_valid(outcome.validation))
        _say(render_plan(outcome.plan, outcome.quota))
    raise typer.Exit(int(outcome.exit_code))


@app.command(
    epilog="Exit codes: 0 all loaded; 1 some rows rejected, refused, blocked or uncertain (see the report); "
    "2 usage or configuration problem; 3 stopped early (API unreachable, key refused, --max-wait): "
    "rerun to continue; 4 a bug in kayse-etl; 5 more rows rejected than --max-rejected: nothing was sent."
)
def load(
    sources: Sources,
    mapping: MappingOpt,
    ledger: LedgerOpt = None,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    delimiter: DelimiterOpt = None,
    header_row: HeaderRowOpt = None,
    campaign: CampaignFlag = False,
    batch_size: BatchOpt = 500,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and plan, then stop: send nothing.")
    ] = False,
    max_wait: MaxWaitOpt = None,
    max_rejected: Annotated[
        str | None,
        typer.Option(
            "--max-rejected",
            help="Refuse the whole load (exit 5, nothing sent) when more rows than this are rejected: "
            "a count, or a share like 5%.",
            metavar="N|P%",
        ),
    ] = None,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            help="Write the validation files plus load.json, failed.csv and success.csv here.", metavar="DIR"
        ),
    ] = None,
    base_url: BaseUrlOpt = None,
    allow_insecure_http: InsecureHttpFlag = False,
    api_key_file: KeyFileOpt = None,
    plain: PlainFlag = False,
    format: FormatOpt = "text",
) -> None:
    """Validate, plan and load into Kayse. Safe to rerun: nothing is created twice."""
    from pipeline import run
    from pipeline.progress import make_observer
    from pipeline.report.load import load_summary, plan_summary, render_load, render_plan
    from pipeline.report.nightly import render_run_end, render_run_start
    from pipeline.report.text import render_rows_valid
    from pipeline.settings import resolve_connection

    _check_format(format)
    run.parse_max_rejected(max_rejected)  # a bad value is a usage error before any work
    connection = resolve_connection(base_url, api_key_file, allow_insecure_http=allow_insecure_http)
    observer = None if dry_run or SESSION.quiet else make_observer(force_plain=plain or format == "json")
    started: dict[str, Any] = {}

    def on_start(run_id: int, the_plan: Plan) -> None:
        started.update(run_id=run_id, clock=time.monotonic())
        line = render_run_start(run_id, datetime.now(), the_plan)
        if observer is not None:
            observer.note(line)
        elif not SESSION.quiet:
            typer.echo(line, err=True)

    def end_line(outcome: str) -> None:
        if started and not SESSION.quiet:
            elapsed = time.monotonic() - started["clock"]
            typer.echo(render_run_end(started["run_id"], elapsed, outcome, validation), err=True)

    validation: Any = None
    try:
        outcome = run.load(
            sources,
            mapping,
            connection=connection,
            ledger_path=ledger,
            campaign=campaign,
            batch_size=batch_size,
            dry_run=dry_run,
            max_wait=max_wait,
            report_dir=report_dir,
            sheet=sheet,
            encoding=encoding,
            delimiter=delimiter,
            header_row=header_row,
            observer=observer,
            on_wait=observer.wait if observer else None,
            max_rejected=max_rejected,
            on_start=on_start,
        )
    except BaseException as error:
        if observer is not None:
            observer.close()
            observer = None
        end_line(f"stopped ({type(error).__name__})")
        raise
    finally:
        if observer is not None:
            observer.close()
    validation = outcome.validation
    if format == "json":
        body = {"plan": plan_summary(outcome.plan)}
        if outcome.result is not None:
            body["load"] = load_summary(outcome.result)
        _print_json(body)
    else:
        _say(render_rows_valid(outcome.validation))
        _say(render_plan(outcome.plan) if outcome.result is None else render_load(outcome.result))
        if report_dir is not None and outcome.report_error is None:
            _say(
                f"reports written to {printable(report_dir)}: "
                + ", ".join(p.name for p in outcome.report_files)
            )
    if outcome.report_error is not None:
        # The load's outcome stands (and its exit code): only the files are missing.
        typer.echo(f"error: the reports were not written: {outcome.report_error}", err=True)
        typer.echo(
            "hint: the load itself is recorded in the ledger (`kayse-etl runs`); rerunning the same "
            "command sends nothing new and writes the reports again",
            err=True,
        )
    if outcome.result is not None:
        end_line(outcome.result.outcome)
    raise typer.Exit(int(outcome.exit_code))


@app.command()
def metadata(
    mapping: MappingOpt,
    base_url: BaseUrlOpt = None,
    allow_insecure_http: InsecureHttpFlag = False,
    api_key_file: KeyFileOpt = None,
    format: FormatOpt = "text",
) -> None:
    """Compare the mapping's allowed case types and statuses with the Kayse account's (one request)."""
    from pipeline import run
    from pipeline.report.text import render_mapping_check
    from pipeline.settings import resolve_connection

    _check_format(format)
    check = run.check_mapping(
        mapping,
        connection=resolve_connection(base_url, api_key_file, allow_insecure_http=allow_insecure_http),
    )
    if format == "json":
        _print_json(dataclasses.asdict(check))
    else:
        _say(render_mapping_check(check))
    raise typer.Exit(int(check.exit_code))


@app.command()
def runs(
    ledger: ReadLedgerOpt,
    format: FormatOpt = "text",
) -> None:
    """The run history of a ledger: when, which inputs, what happened."""
    from pipeline import run
    from pipeline.report.load import render_runs

    _check_format(format)
    history = run.runs(ledger)
    if format == "json":
        _print_json([dataclasses.asdict(row) for row in history])
    else:
        _say(render_runs(history))


@app.command()
def uncertain(
    ledger: ReadLedgerOpt,
    csv_out: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="Also write them to this CSV, to fill in and pass to `resolve --from-csv`.",
            metavar="FILE",
        ),
    ] = None,
    format: FormatOpt = "text",
) -> None:
    """Records whose create was sent but whose answer was lost: Kayse may or may not hold them."""
    from pipeline import run
    from pipeline.report.text import render_uncertain

    _check_format(format)
    rows = run.list_uncertain(ledger, template=csv_out)
    messages = run.list_uncertain_messages(ledger)
    if format == "json":
        _print_json(
            {
                "records": [dataclasses.asdict(r) for r in rows],
                "messages": [dataclasses.asdict(m) for m in messages],
            }
        )
    else:
        _say(render_uncertain(rows, messages))


@app.command()
def resolve(
    ledger: ExistingLedgerOpt,
    kind: Annotated[
        str | None, typer.Argument(help="client, case, case_list, campaign or message.", metavar="KIND")
    ] = None,
    key: Annotated[
        str | None,
        typer.Argument(
            help="The key `kayse-etl uncertain` shows, e.g. import:C-1001 (or just C-1001).", metavar="KEY"
        ),
    ] = None,
    kayse_id: Annotated[
        int | None, typer.Option("--kayse-id", help="The id you found in Kayse.", metavar="ID")
    ] = None,
    recreate: Annotated[
        bool, typer.Option("--recreate", help="It is not in Kayse: create it on the next load.")
    ] = False,
    from_csv: Annotated[
        Path | None,
        typer.Option(
            "--from-csv", help="Decisions for many records: columns kind, key, kayse_id.", metavar="FILE"
        ),
    ] = None,
    sent: Annotated[
        bool, typer.Option("--sent", help="message: it went out (seen in Kayse); never send it again.")
    ] = False,
    resend: Annotated[
        bool,
        typer.Option("--resend", help="message: it did not go out; the next run of the same text sends it."),
    ] = False,
    base_url: BaseUrlOpt = None,
    allow_insecure_http: InsecureHttpFlag = False,
    api_key_file: KeyFileOpt = None,
    format: FormatOpt = "text",
) -> None:
    """Settle uncertain records, knowingly: record the Kayse id you found, or have them re-created.
    Also re-points any record whose Kayse copy was deleted (--recreate) or merged (--kayse-id).
    For an uncertain message: `resolve message KEY --sent` or `--resend`."""
    from pipeline import run
    from pipeline.report.text import render_settled, render_unmatched
    from pipeline.settings import resolve_connection

    _check_format(format)
    if kind == "message" or sent or resend:
        _resolve_message(
            ledger,
            kind,
            key,
            sent,
            resend,
            bool(kayse_id is not None or recreate or from_csv),
            base_url,
            api_key_file,
            allow_insecure_http,
        )
        return
    decisions: list[Decision] = []
    if from_csv is not None:
        if kind or key or kayse_id is not None or recreate:
            raise UserError(
                "give either --from-csv FILE or KIND KEY with --kayse-id/--recreate, not both",
                hint="one record: kayse-etl resolve client import:C-1001 --recreate; many: --from-csv FILE",
            )
    else:
        if kind is None or key is None:
            raise UserError(
                "name the record (KIND KEY) or give --from-csv FILE", hint="see `kayse-etl uncertain`"
            )
        if (kayse_id is None) == (not recreate):
            raise UserError(
                "give exactly one of --kayse-id ID or --recreate",
                hint="--kayse-id ID if you found it in Kayse, --recreate if it is not there",
            )
        decisions = [Decision(kind, key, kayse_id)]
    settled, unmatched = run.resolve(
        decisions,
        connection=resolve_connection(base_url, api_key_file, allow_insecure_http=allow_insecure_http),
        ledger_path=ledger,
        from_csv=from_csv,
    )
    if format == "json":
        _print_json({"settled": [vars(d) for d in settled], "unmatched": [vars(d) for d in unmatched]})
    else:
        if settled:
            _say(render_settled(settled))
        if unmatched:
            typer.echo(render_unmatched(unmatched), err=True)
    if unmatched:
        raise typer.Exit(int(ExitCode.REJECTED))


@app.command()
def rollback(
    run_id: Annotated[int, typer.Argument(help="The run to undo (see `kayse-etl runs`).", metavar="RUN")],
    ledger: ExistingLedgerOpt,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    with_dependent_cases: Annotated[
        bool,
        typer.Option(
            "--with-dependent-cases",
            help="Also delete the cases of later runs linked to this run's clients "
            "(default: keep those clients, so no case loses its client).",
        ),
    ] = False,
    base_url: BaseUrlOpt = None,
    allow_insecure_http: InsecureHttpFlag = False,
    api_key_file: KeyFileOpt = None,
    format: FormatOpt = "text",
) -> None:
    """Delete from Kayse the clients and cases a run created (lists and campaigns: see README).
    A client a later run's case needs is kept, unless --with-dependent-cases."""
    from pipeline import run
    from pipeline.model import RollbackPlan
    from pipeline.report.text import render_rollback, render_rollback_plan
    from pipeline.settings import resolve_connection

    _check_format(format)
    if not yes and format == "json":
        raise UserError("rollback --format json cannot ask for confirmation", hint="add --yes")
    connection = resolve_connection(base_url, api_key_file, allow_insecure_http=allow_insecure_http)

    def confirm(plan: RollbackPlan) -> bool:
        if format == "json":  # --yes given: stdout stays the JSON summary
            return True
        typer.echo(render_rollback_plan(plan))
        return yes or typer.confirm("Delete them from Kayse?", abort=True)

    summary = run.rollback(
        run_id,
        connection=connection,
        ledger_path=ledger,
        with_dependent_cases=with_dependent_cases,
        confirm=confirm,
    )
    if format == "json":
        _print_json(dataclasses.asdict(summary))
    else:
        _say(render_rollback(summary))
    raise typer.Exit(int(summary.exit_code))


# ---- mappings ------------------------------------------------------------------------


@mappings_app.command("init")
def mappings_init(
    source: Annotated[
        Path,
        typer.Argument(
            help="A CSV or XLSX export whose headers the mapping is drafted from.", metavar="SOURCE"
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the draft here (default: print it).", metavar="FILE"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --out FILE if it exists.")] = False,
    sheet: SheetOpt = None,
    encoding: EncodingOpt = None,
    delimiter: DelimiterOpt = None,
    header_row: HeaderRowOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_file: KeyFileOpt = None,
    allow_insecure_http: InsecureHttpFlag = False,
    format: FormatOpt = "text",
) -> None:
    """Draft a commented mapping from a file's headers, ready for `validate` and for a person to edit.

    With an API key set, the allowed case types and statuses come from the account (one request);
    without one, from the file's own values."""
    from pipeline import run
    from pipeline.settings import Connection, resolve_api_key, resolve_base_url

    _check_format(format)
    key = resolve_api_key(api_key_file, required=False)
    url = resolve_base_url(base_url, allow_insecure_http=allow_insecure_http) if key else None
    connection = Connection(url, key, allow_insecure_http=allow_insecure_http) if url and key else None
    draft = run.draft_mapping(
        source,
        out=out,
        force=force,
        connection=connection,
        sheet=sheet,
        encoding=encoding,
        delimiter=delimiter,
        header_row=header_row,
    )
    if format == "json":
        body = dataclasses.asdict(draft)
        body["path"] = str(out) if out is not None else None
        _print_json(body)
    elif out is None:
        typer.echo(draft.text, nl=False)
    else:
        matched = len(draft.fields)
        _say(
            f"Drafted {out}: {matched} column(s) matched to Kayse fields, {len(draft.unmatched)} left for you "
            f"(commented), allowed values from the {draft.allowed_from}.\n"
            f"Read it through, then: kayse-etl validate {source} --mapping {out}"
        )


# ---- notify: messages to the clients of loaded cases ----------------------------------------


def _resolve_message(
    ledger: Path,
    kind: str | None,
    key: str | None,
    sent: bool,
    resend: bool,
    other_flags: bool,
    base_url: str | None,
    api_key_file: Path | None,
    allow_insecure_http: bool = False,
) -> None:
    from pipeline import run
    from pipeline.report.notify import render_message_resolved
    from pipeline.settings import resolve_connection

    if kind != "message" or key is None or other_flags or sent == resend:
        raise UserError(
            "for a message give: resolve message KEY with exactly one of --sent or --resend",
            hint="the KEY is what `kayse-etl uncertain` shows, e.g. sms:12:34:1a2b3c4d5e6f",
        )
    done = run.resolve_message(
        key,
        sent=sent,
        connection=resolve_connection(base_url, api_key_file, allow_insecure_http=allow_insecure_http),
        ledger_path=ledger,
    )
    typer.echo(render_message_resolved(key, sent=sent, done=done), err=not done)
    if not done:
        raise typer.Exit(int(ExitCode.REJECTED))


@app.command(
    epilog="Exit codes: 0 done (skips and quiet-hour holds are reported, not errors); 1 some messages refused "
    "by Kayse or uncertain; 2 usage problem (bad message file, no subject, selector), nothing sent; "
    "3 stopped early (quota wait too long, key refused, API unreachable): rerun to continue."
)
def notify(
    ledger: Annotated[
        Path,
        typer.Option("--ledger", help="The ID ledger of the load that created the cases.", metavar="PATH"),
    ],
    channel: Annotated[str, typer.Option("--channel", help="sms or email.", metavar="sms|email")],
    message_file: Annotated[
        Path,
        typer.Option(
            "--message-file",
            help="UTF-8 text; {{first_name}} and other variables go to Kayse as they are.",
            metavar="FILE",
        ),
    ],
    run_id: Annotated[
        int | None, typer.Option("--run", help="The clients of the cases this run created.", metavar="RUN")
    ] = None,
    case_list: Annotated[
        str | None,
        typer.Option(
            "--case-list", help="The clients of the cases the ledger put in this list.", metavar="NAME"
        ),
    ] = None,
    cases_csv: Annotated[
        Path | None,
        typer.Option(
            "--cases-csv",
            help="A CSV with a case_id (Kayse ids) or key (ledger keys) column.",
            metavar="FILE",
        ),
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option("--subject", help="The email's subject (email only, required).", metavar="TEXT"),
    ] = None,
    send: Annotated[
        bool, typer.Option("--send", help="Send. Without it: a preview that sends no request.")
    ] = False,
    any_hour: Annotated[
        bool,
        typer.Option(
            "--any-hour", help="Do not hold messages outside 08:00–21:00 in the client's time zone."
        ),
    ] = False,
    default_timezone: Annotated[
        str,
        typer.Option(
            "--default-timezone",
            help="Time zone for clients with no (or an unknown) US state.",
            metavar="ZONE",
        ),
    ] = "America/New_York",
    max_wait: MaxWaitOpt = None,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            "--report-dir", help="Write notify.json and skipped.csv (ids and reasons) here.", metavar="DIR"
        ),
    ] = None,
    base_url: BaseUrlOpt = None,
    allow_insecure_http: InsecureHttpFlag = False,
    api_key_file: KeyFileOpt = None,
    plain: PlainFlag = False,
    format: FormatOpt = "text",
) -> None:
    """Text or email the clients of loaded cases: preview by default, --send to send. Never twice,
    never to a client who opted out, and only 08:00–21:00 in the client's time zone."""
    from pipeline import run
    from pipeline.progress import make_observer
    from pipeline.report.notify import notify_summary, render_notify

    _check_format(format)
    url, connection = _optional_connection(
        base_url, api_key_file, allow_insecure_http=allow_insecure_http, required=send
    )
    observer = make_observer(force_plain=plain or format == "json") if send else None
    try:
        outcome = run.notify(
            ledger,
            channel=channel,
            message_file=message_file,
            subject=subject,
            connection=connection,
            base_url=url,
            run_id=run_id,
            case_list=case_list,
            cases_csv=cases_csv,
            send=send,
            any_hour=any_hour,
            default_timezone=default_timezone,
            max_wait=max_wait,
            report_dir=report_dir,
            observer=observer,
            on_wait=observer.wait if observer else None,
        )
    finally:
        if observer is not None:
            observer.close()
    if format == "json":
        _print_json(notify_summary(outcome))
    else:
        typer.echo(render_notify(outcome))
        if report_dir is not None:
            typer.echo(f"reports written to {report_dir}")
    raise typer.Exit(int(outcome.exit_code))


# ---- crm: integrations, outcome types, field mappings as a file --------------------------

crm_app = typer.Typer(
    help="The account's CRM integrations, outcome types and field mappings.", no_args_is_help=True
)
fields_app = typer.Typer(
    help="CRM field mappings as a YAML file kept in version control.", no_args_is_help=True
)
crm_app.add_typer(fields_app, name="fields")
app.add_typer(crm_app, name="crm")


def _crm_list(
    fetch: Callable[..., list[dict[str, Any]]],
    render: Callable[[list[dict[str, Any]]], str],
    json_key: str,
    *,
    base_url: str | None,
    api_key_file: Path | None,
    allow_insecure_http: bool,
    format: str,
) -> None:
    """One read-only CRM listing (one request): fetched through `run`, shown as text or JSON."""
    from pipeline.settings import resolve_connection

    _check_format(format)
    items = fetch(
        connection=resolve_connection(base_url, api_key_file, allow_insecure_http=allow_insecure_http)
    )
    if format == "json":
        _print_json({json_key: items})
    else:
        typer.echo(render(items))


@crm_app.command("integrations")
def crm_integrations(
    base_url: BaseUrlOpt = None,
    api_key_file: KeyFileOpt = None,
    format: FormatOpt = "text",
    allow_insecure_http: InsecureHttpFlag = False,
) -> None:
    """The CRM integrations the account has connected (one request)."""
    from pipeline import run
    from pipeline.report.crm import render_integrations

    _crm_list(
        run.crm_integrations,
        render_integrations,
        "integrations",
        base_url=base_url,
        api_key_file=api_key_file,
        allow_insecure_http=allow_insecure_http,
        format=format,
    )


@crm_app.command("outcome-types")
def crm_outcome_types(
    base_url: BaseUrlOpt = None,
    api_key_file: KeyFileOpt = None,
    format: FormatOpt = "text",
    allow_insecure_http: InsecureHttpFlag = False,
) -> None:
    """The outcome types usable in CRM mappings and campaign workflows (one request)."""
    from pipeline import run
    from pipeline.report.crm import render_outcome_types

    _crm_list(
        run.crm_outcome_types,
        render_outcome_types,
        "outcome_types",
        base_url=base_url,
        api_key_file=api_key_file,
        allow_insecure_http=allow_insecure_http,
        format=format,
    )


@fields_app.command("pull")
def crm_fields_pull(
    out: Annotated[
        Path,
        typer.Option("--out", help="The YAML file to write (0600), in the API's own shape.", metavar="FILE"),
    ],
    base_url: BaseUrlOpt = None,
    allow_insecure_http: InsecureHttpFlag = False,
    api_key_file: KeyFileOpt = None,
    format: FormatOpt = "text",
) -> None:
    """Write Kayse's CRM field mappings to a YAML file, exactly (one request)."""
    from pipeline import run
    from pipeline.settings import resolve_connection

    _check_format(format)
    mappings = run.crm_pull(
        connection=resolve_connection(base_url, api_key_file, allow_insecure_http=allow_insecure_http),
        out=out,
    )
    if format == "json":
        _print_json({"mappings": mappings, "out": str(out)})
    else:
        typer.echo(f"{len(mappings)} mapping(s) written to {out}")


@fields_app.command("push")
def crm_fields_push(
    mapping_file: Annotated[
        Path, typer.Argument(help="The YAML file (as `crm fields pull` writes it).", metavar="FILE")
    ],
    yes: Annotated[
        bool, typer.Option("--yes", help="Send the changes (one request). Without it: show them only.")
    ] = False,
    base_url: BaseUrlOpt = None,
    allow_insecure_http: InsecureHttpFlag = False,
    api_key_file: KeyFileOpt = None,
    format: FormatOpt = "text",
) -> None:
    """Check the file, show its difference with Kayse, and with --yes send only what changed."""
    from pipeline import run
    from pipeline.report.crm import push_summary, render_push
    from pipeline.settings import resolve_connection

    _check_format(format)
    outcome = run.crm_push(
        mapping_file,
        connection=resolve_connection(base_url, api_key_file, allow_insecure_http=allow_insecure_http),
        yes=yes,
    )
    if format == "json":
        _print_json(push_summary(outcome))
    else:
        typer.echo(render_push(outcome, yes=yes))


# ---- extract axiomatic (legacy CRM → a folder of CSVs, read-only) ------------------------

extract_app = typer.Typer(
    help="Read a legacy CRM into a folder of CSV files (read-only).", no_args_is_help=True
)
app.add_typer(extract_app, name="extract")


@extract_app.command(
    "axiomatic",
    epilog="Exit codes: 0 extracted, complete; 1 extracted, but some table may be incomplete (error findings "
    "in extract.json); 2 usage or configuration problem (bad flag, no key, wrong entity, key lacks read:crm, "
    "not an Axiomatic API); 3 stopped early (key refused, host unreachable, quota wait beyond --max-wait): "
    "nothing written, rerun; 4 a bug in kayse-etl.",
)
def extract_axiomatic(
    base_url: Annotated[
        str, typer.Option("--base-url", help="Axiomatic's URL, the part before /api.", metavar="URL")
    ],
    entity: Annotated[
        str,
        typer.Option("--entity", help="The entity's UUID (GET /api/entities lists them).", metavar="UUID"),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Folder to write (replaced whole when the extract is done).", metavar="DIR"
        ),
    ],
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            "--api-key-file",
            help="Read the read:crm key from this file (default: $AXIOMATIC_API_KEY).",
            metavar="PATH",
        ),
    ] = None,
    timelines: Annotated[
        bool, typer.Option("--timelines", help="Also read each lead's timeline (one request per lead).")
    ] = False,
    plain: Annotated[bool, typer.Option("--plain", help="Log lines instead of a progress display.")] = False,
    max_wait: Annotated[
        float | None,
        typer.Option(
            "--max-wait",
            help="Longest wait (seconds) for the read quota before stopping (exit 3).",
            metavar="SECONDS",
        ),
    ] = None,
    format: FormatOpt = "text",
) -> None:
    """Read an Axiomatic entity's CRM (contacts, companies, memberships, stages, leads, activities, tasks)
    into CSV files plus extract.json. Sends only GET requests: a read:crm key is enough."""
    from pipeline import run
    from pipeline.progress import make_extract_observer
    from pipeline.report.crm import extract_summary, render_extract

    _check_format(format)
    observer = make_extract_observer(force_plain=plain or format == "json")
    try:
        result = run.extract_axiomatic(
            base_url,
            entity,
            out,
            api_key_file=api_key_file,
            timelines=timelines,
            max_wait=max_wait,
            observer=observer,
        )
    finally:
        observer.close()
    if format == "json":
        _print_json(extract_summary(result))
    else:
        typer.echo(render_extract(result))
    raise typer.Exit(int(result.exit_code))


_NOTHING_LEFT_OPEN = False
"""Set by a command that has written and closed everything it opened (validate: no ledger, no
connection, every report renamed into place), so that its process may end without teardown."""


def run_and_exit() -> None:
    """The process's entry point (the `kayse-etl` script, `python -m pipeline`): main(), then,
    after `validate`, an exit that skips the interpreter's teardown. Freeing a big file's frames
    object by object takes a tenth of a second or more, and the OS takes the memory back at once;
    output is flushed first. Other commands end normally (a ledger checkpoints its WAL on close)."""
    try:
        main()
    except SystemExit as done:
        if not _NOTHING_LEFT_OPEN or not isinstance(done.code, int):
            raise
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError):  # a closed pipe: what the reader wanted, it has
                stream.flush()
        logging.shutdown()
        os._exit(done.code)


def main() -> None:
    """Entry point: run the app, turning foreseeable problems into one line and an exit code.

    Click handles usage errors itself (exit 2). Everything else that escapes a command goes
    through the one table below, most specific first: the Kayse client and the sandbox only
    raise typed errors, and what they mean for the process is decided here, nowhere else.
    """
    try:
        app(
            prog_name="kayse-etl"
        )  # also under `python -m pipeline`: completion is for the command people type
    except KeyboardInterrupt:
        typer.echo(
            "interrupted: run the same command again to continue (a load or notify keeps what it did "
            "in the ledger; an extract writes its folder only once it is complete)",
            err=True,
        )
        sys.exit(int(ExitCode.STOPPED))
    except Exception as error:
        # Imported only now, so that a command that never talks to Kayse loads no HTTP stack.
        from pipeline.axiomatic_sandbox import AxiomaticSandboxError
        from pipeline.kayse import (
            AuthError,
            ConfigurationError,
            KayseError,
            RateLimited,
            RequestRejected,
            ServerError,
            TransportError,
        )
        from pipeline.sandbox import SandboxError

        exit_codes: tuple[tuple[type[Exception], ExitCode], ...] = (
            (UserError, ExitCode.USAGE),  # or the exit_code it carries
            (SandboxError, ExitCode.USAGE),  # bad setting, port in use: the sandbox did not start
            (AxiomaticSandboxError, ExitCode.USAGE),  # the same, for the local Axiomatic
            (ConfigurationError, ExitCode.USAGE),  # no usable key or base URL: nothing was sent
            (RequestRejected, ExitCode.REJECTED),  # the API refused the request itself
            (AuthError, ExitCode.STOPPED),  # key refused: rerun with a good key continues
            (RateLimited, ExitCode.STOPPED),  # also WaitTooLong: rerun later continues
            (ServerError, ExitCode.STOPPED),
            (TransportError, ExitCode.STOPPED),  # also OutcomeUnknown
            (KayseError, ExitCode.STOPPED),  # any other unexpected answer
            (OSError, ExitCode.USAGE),  # a file we could not write or read: permissions, a full disk
        )
        code = next((code for kind, code in exit_codes if isinstance(error, kind)), None)
        machine = storage_problem(error, "a file") if isinstance(error, sqlite3.DatabaseError) else None
        if machine is not None:  # SQLite's failures reach here only when no ledger named them
            code = ExitCode.STOPPED
        if code is None:  # a bug: say so, show where, and keep its exit code apart from "rows rejected"
            import traceback

            typer.echo(traceback.format_exc(), err=True)
            words = (
                "internal error: this is a bug in kayse-etl, not a problem with your data. The ledger holds "
                "what was done, so a rerun continues. Please report it with the lines above."
            )
            typer.echo(words, err=True)
            if SESSION.format == "json":
                body = {"error": f"internal error: {type(error).__name__}", "hint": words, "exit_code": 4}
                typer.echo(json.dumps(body))
            sys.exit(int(ExitCode.INTERNAL))
        if isinstance(error, UserError):
            code = error.exit_code
        if isinstance(error, UserError | SandboxError | KayseError):
            message, hint = error.message, error.hint
        elif isinstance(error, AxiomaticSandboxError):
            message, hint = str(error), error.hint
        elif machine is not None:
            message, hint = machine[0], machine[1]
        else:
            assert isinstance(error, OSError)
            shown = f" {printable(error.filename)}" if error.filename else ""
            problem = storage_problem(error, f"the file{shown}")
            message = problem[0] if problem else f"{error.strerror or error}{shown}"
            hint = problem[1] if problem else "check the path, its permissions and the free disk space"
        if SESSION.format == "json":  # a script asked for JSON: it gets JSON, failures included
            typer.echo(
                json.dumps({"error": message, "hint": hint, "exit_code": int(code)}, ensure_ascii=False)
            )
        else:
            # One line each, whatever a file name in them holds: control characters are shown escaped.
            typer.echo(f"error: {printable(message)}", err=True)
            if hint:
                typer.echo(f"hint: {printable(hint)}", err=True)
        sys.exit(int(code))


if __name__ == "__main__":
    main()
