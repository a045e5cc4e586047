"""`kayse-etl validate` as a user runs it (a real process): output, report files and every exit code."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.generate import write_generic_export
from pipeline import run
from pipeline.report.validation import summary

ROOT = Path(__file__).resolve().parents[1]
GENERIC = ROOT / "mappings" / "generic.yaml"
LEADS = ROOT / "sample_data" / "leads.csv"
LEGALEDGE = ROOT / "sample_data" / "legaledge_matters.csv"


def validate_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pipeline", "validate", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "Traceback" not in result.stderr + result.stdout
    return result


def test_clean_file_exits_0(tmp_path: Path) -> None:
    clean = write_generic_export(tmp_path / "clean.csv", 60, seed=9, defect_rate=0.0).path
    result = validate_cli(clean, "--mapping", GENERIC)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "60 rows read: 60 ready, 0 rejected" in result.stdout
    assert "Every row is ready." in result.stdout


def test_sample_with_rejected_rows_exits_1_and_writes_the_report(tmp_path: Path) -> None:
    report = tmp_path / "report"
    result = validate_cli(LEADS, "--mapping", GENERIC, "--report-dir", report)
    assert result.returncode == 1
    assert "300 rows read: 272 ready, 28 rejected" in result.stdout
    assert (
        f"Report written to {report}: summary.json, rejects.csv, clients.csv, cases.csv, warnings.csv"
        in result.stdout
    )
    assert sorted(p.name for p in report.iterdir()) == sorted(
        [
            "summary.json",
            "rejects.csv",
            "clients.csv",
            "cases.csv",
            "warnings.csv",
            "annotated.xlsx",
            "report.html",
        ]
    )


def test_json_output_equals_the_library_summary(tmp_path: Path) -> None:
    result = validate_cli(LEADS, "--mapping", GENERIC, "--format", "json", "--report-dir", tmp_path)
    assert result.returncode == 1
    printed = json.loads(result.stdout)  # stdout is pure JSON; the report note goes to stderr
    assert printed == summary(run.validate([LEADS], GENERIC))
    assert printed == json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert "Report written to" in result.stderr


def test_missing_source_file_exits_2(tmp_path: Path) -> None:
    result = validate_cli(tmp_path / "nope.csv", "--mapping", GENERIC)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "nope.csv" in result.stderr


def test_missing_mapping_file_exits_2(tmp_path: Path) -> None:
    result = validate_cli(LEADS, "--mapping", tmp_path / "missing.yaml")
    assert result.returncode == 2
    assert "missing.yaml" in result.stderr and "hint:" in result.stderr


@pytest.mark.parametrize(
    "text",
    [
        "name: broken\nclient: [unclosed\n",  # not YAML
        GENERIC.read_text(encoding="utf-8").replace("    first_name: First Name", "    nickname: First Name"),
    ],
    ids=["not-yaml", "unknown-kayse-field"],
)
def test_bad_mapping_exits_2(tmp_path: Path, text: str) -> None:
    mapping = tmp_path / "bad.yaml"
    mapping.write_text(text, encoding="utf-8")
    result = validate_cli(LEADS, "--mapping", mapping)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "bad.yaml" in result.stderr


def test_missing_column_exits_2() -> None:
    result = validate_cli(LEGALEDGE, "--mapping", GENERIC)  # a LegalEdge file has no "Contact ID"
    assert result.returncode == 2
    assert "Contact ID" in result.stderr


def test_wrong_format_is_a_usage_error() -> None:
    result = validate_cli(LEADS, "--mapping", GENERIC, "--format", "xml")
    assert result.returncode == 2
    assert "--format" in result.stderr and "xml" in result.stderr


def mac_roman_semicolon_export(tmp_path: Path) -> Path:
    """A clean export saved the way an old Mac CRM would: mac-roman, semicolon-delimited. The
    encoding is one detection cannot tell (the bytes decode as cp1252 too, to other letters)."""
    clean = write_generic_export(tmp_path / "clean.csv", 5, seed=9, defect_rate=0.0).path
    with open(clean, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    rows[1][rows[0].index("First Name")] = "Renée"
    path = tmp_path / "mac.csv"
    with open(path, "w", newline="", encoding="mac_roman", errors="replace") as handle:
        csv.writer(handle, delimiter=";").writerows(rows)
    return path


def test_encoding_and_delimiter_flags_override_detection(tmp_path: Path) -> None:
    export = mac_roman_semicolon_export(tmp_path)
    detected = json.loads(validate_cli(export, "--mapping", GENERIC, "--format", "json").stdout)
    assert detected["sources"][0]["encoding"] == "cp1252"  # a wrong guess, but a readable one
    report = tmp_path / "report"
    result = validate_cli(
        export,
        "--mapping",
        GENERIC,
        "--encoding",
        "mac-roman",
        "--delimiter",
        "semicolon",
        "--format",
        "json",
        "--report-dir",
        report,
    )
    assert result.returncode == 0, result.stderr
    source = json.loads(result.stdout)["sources"][0]
    assert source["delimiter"] == ";" and source["encoding"].replace("_", "-") == "mac-roman"
    assert "Renée" in (report / "clients.csv").read_text(encoding="utf-8-sig")


def test_a_wrong_delimiter_flag_is_obeyed_not_second_guessed(tmp_path: Path) -> None:
    result = validate_cli(mac_roman_semicolon_export(tmp_path), "--mapping", GENERIC, "--delimiter", "tab")
    assert result.returncode == 2
    assert "Contact ID" in result.stderr  # one column only: the mapping's columns are missing
