"""Regenerate sample_data/ deterministically: `python -m bench.make_samples [OUT_DIR]`.

The committed samples are what the demo, the docs and the report tests run on; this script is
their single source, so a change to the generator shows up as a diff in sample_data/ and in the
defect table of sample_data/README.md (written from the generator's own record of where it put
each defect). It must never produce different bytes for the same code: no clocks, no global RNG.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.generate import (
    GENERIC,
    LEGALEDGE,
    GeneratedExport,
    Layout,
    write_export,
)

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"


@dataclass(frozen=True)
class Sample:
    file_name: str
    layout: Layout
    rows: int
    seed: int
    defect_rate: float
    fmt: Literal["csv", "xlsx"]
    mapping: str
    about: str


SAMPLES: tuple[Sample, ...] = (
    Sample(
        "leads.csv", GENERIC, 300, 20260101, 0.107, "csv", "mappings/generic.yaml",
        "The generic flat lead export (UTF-8, comma-delimited), one row per lead.",
    ),
    Sample(
        "leads.xlsx", GENERIC, 300, 20260101, 0.107, "xlsx", "mappings/generic.yaml",
        "The same 300 leads as leads.csv, saved as a spreadsheet with typed cells: phones and "
        "5-digit ZIPs are numbers (so 02108 shows as 2108), dates are date cells.",
    ),
    Sample(
        "legaledge_matters.csv", LEGALEDGE, 150, 20260202, 0.107, "csv", "mappings/legaledge.yaml",
        "A LegalEdge CRM matter export: semicolon-delimited, Windows-1252 (cp1252), CRLF line ends, "
        "DD/MM/YYYY dates, practice areas and statuses in the CRM's own words.",
    ),
)  # fmt: skip

DEFECT_DESCRIPTIONS: dict[str, str] = {
    "invalid_phone": "mobile phone that is not a real number (too short or too long)",
    "impossible_date": "date of birth that does not exist (e.g. 30 February)",
    "future_birth_date": "date of birth in the future",
    "pre1900_birth_date": "date of birth before 1900",
    "malformed_email": "email address that is not an address (`@@`, `at`, no domain ending, comma)",
    "unknown_state": "state that is not a US state, code or name",
    "bad_zip": "ZIP code that is not 5 digits or ZIP+4",
    "missing_first_name": "first name empty",
    "missing_last_name": "last name empty",
    "unknown_case_type": "case type not in the mapping's allowed list (and no value map)",
    "unknown_case_status": "case status not in the mapping's allowed list (and no value map)",
    "duplicate_case_id": "case id repeated from the row above",
    "conflicting_contact": "contact id repeated from the row above, but with a different person's details",
    "formula_description": "description that Excel would run as a formula (`=HYPERLINK(…)`, `=1+2`, `@SUM`, `+1…`)",
    "several_problems": "invalid phone, malformed email and empty last name in one row",
    "ragged_row": "the record stops after the 7th column (CSV: a short line; XLSX: trailing cells empty)",
}


def make_samples(out_dir: Path = SAMPLE_DIR) -> dict[str, GeneratedExport]:
    """Write every sample file and sample_data/README.md into out_dir; return what was written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, GeneratedExport] = {}
    for sample in SAMPLES:
        written[sample.file_name] = write_export(
            sample.layout,
            out_dir / sample.file_name,
            sample.rows,
            seed=sample.seed,
            defect_rate=sample.defect_rate,
            fmt=sample.fmt,
            ragged=True,
        )
    (out_dir / "README.md").write_text(render_readme(written), encoding="utf-8")
    return written


def render_readme(written: dict[str, GeneratedExport]) -> str:
    lines = [
        "# Sample data",
        "",
        "Made-up leads for trying kayse-etl without real client data: every name, email "
        "(`@example.*`) and phone number (555-01xx, the range reserved for fiction) is invented.",
        "Regenerate with `python -m bench.make_samples` (deterministic: same code, same bytes).",
        "",
        "| file | rows | contacts | mapping | what it is |",
        "|---|---|---|---|---|",
    ]
    for sample in SAMPLES:
        export = written[sample.file_name]
        lines.append(
            f"| `{sample.file_name}` | {export.rows} | {export.contacts} | `{sample.mapping}` | {sample.about} |"
        )
    lines += [
        "",
        "## What is realistic on purpose (not defects)",
        "",
        "- Names with accents and apostrophes (José, Zoë, O'Brien, Nguyễn, Søren); the cp1252 "
        "LegalEdge file writes the typographic apostrophe (O’Brien) and has no ễ, so Nguyễn is Nguyen there.",
        "- Some contacts have several cases: their rows share the contact id and repeat the same details.",
        "- Phones typed as `(212) 555-0123`, `212.555.0123`, `+1 212 555 0123`, `2125550123`, "
        "`212-555-0123`, `1-212-555-0123`, or left empty.",
        "- States as codes or names in any case (`NY`, `ny`, `New York`, `NEW YORK`); ZIPs with "
        "leading zeros (Boston 02108) and ZIP+4.",
        "- Dates as `3/4/1985`, `03/04/1985` and `1985-03-04` (generic, month first) or `04/03/1985` "
        "(LegalEdge, day first); empty dates.",
        "- Case types and statuses spelled the firm's way (`PI`, `Workers' Compensation`, `Open - Active`, "
        "`Settled`, LegalEdge's `Road Traffic Accident`, `Live`, `New Enquiry`): the mapping's value maps turn "
        "them into Kayse's names. An empty status becomes `open` (the mapping's default).",
        "- Descriptions with commas, quotes, and a few line breaks inside one cell; a few begin with `-`.",
        "- A first name with a stray trailing space.",
        "",
        "## Deliberate defects",
        "",
        "Row numbers are the spreadsheet's (header = row 1). The validator should reject or warn about each.",
        "",
    ]
    for sample in SAMPLES:
        export = written[sample.file_name]
        lines += [f"### `{sample.file_name}`", "", "| defect | rows |", "|---|---|"]
        for kind, rows in export.defects.items():
            lines.append(f"| {DEFECT_DESCRIPTIONS[kind]} | {', '.join(str(r) for r in rows)} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else SAMPLE_DIR
    for name, export in make_samples(out_dir).items():
        defects = sum(len(rows) for rows in export.defects.values())
        print(f"wrote {out_dir / name}: {export.rows} rows, {export.contacts} contacts, {defects} defects")


if __name__ == "__main__":
    main()
