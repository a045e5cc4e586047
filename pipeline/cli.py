"""The `kayse-etl` command line: parse flags, call `pipeline.run`, print, exit.

No logic lives here beyond turning flags into library arguments and results into output and
exit codes (see the README). The API key is never a flag: it comes from KAYSE_API_KEY or
--api-key-file, so it never shows in `ps` or shell history.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.model import ExitCode, UserError

app = typer.Typer(
    name="kayse-etl",
    help="Move leads and cases from spreadsheets and legacy CRMs into Kayse.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals could hold the API key
    add_completion=False,
)

Sources = Annotated[list[Path], typer.Argument(help="CSV or XLSX files to read.", show_default=False)]
MappingOpt = Annotated[Path, typer.Option("--mapping", "-m", help="Mapping file (YAML), see mappings/.")]
SheetOpt = Annotated[str | None, typer.Option("--sheet", help="XLSX sheet name (default: the first).")]


# ---- validate (data side) ------------------------------------------------------------


@app.command()
def validate(
    sources: Sources,
    mapping: MappingOpt,
    sheet: SheetOpt = None,
    report_dir: Annotated[Path | None, typer.Option(help="Write summary.json, rejects.csv, clients.csv, cases.csv here.")] = None,
    format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Check a file against a mapping with no network: what would load, and what is wrong with the rest."""
    raise UserError("validate is not built yet")


# ---- sandbox (Kayse side) ------------------------------------------------------------


@app.command()
def sandbox() -> None:
    """Run a local Kayse-compatible API (for rehearsals, the demo and the tests)."""
    raise UserError("sandbox is not built yet")


# ---- plan / load / runs (loader) -----------------------------------------------------


def main() -> None:
    """Entry point: run the app, turning foreseeable problems into one line and an exit code.

    Click handles usage errors itself (exit 2); UserError is ours (one line + hint).
    """
    try:
        app()
    except UserError as error:
        typer.echo(f"error: {error.message}", err=True)
        if error.hint:
            typer.echo(f"hint: {error.hint}", err=True)
        sys.exit(int(error.exit_code))
    except KeyboardInterrupt:
        typer.echo("interrupted: the ledger holds what was done; run the same command again to continue", err=True)
        sys.exit(int(ExitCode.STOPPED))


if __name__ == "__main__":
    main()
