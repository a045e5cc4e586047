"""The file to fix: rejects.csv is what a user corrects and checks again with the same mapping;
after a load, failed.csv carries the refused rows' original columns and success.csv the Kayse ids
of every row loaded. Over real files, the real CLI and the sandbox."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.generate import GENERIC_HEADERS
from bench.make_samples import SAMPLE_DIR
from pipeline import run
from pipeline.kayse import KayseClient
from pipeline.report.load import write_load_report
from pipeline.report.validation import write_validation_report
from pipeline.settings import Connection
from tests.conftest import SANDBOX_TEST_KEY
from tests.report.conftest import GENERIC_MAPPING, ROOT

APPENDED = ["code", "field", "reason", "kayse_source_file", "kayse_source_row"]
KEYS = {"Contact ID": "CFIX", "Case ID": "KFIX"}  # ids must stay unique: never copied


def validate_cli(source: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pipeline", "validate", str(source), "--mapping", str(GENERIC_MAPPING)]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def fix(row: dict[str, str], donor: dict[str, str], number: int) -> dict[str, str]:
    """What a person would do: retype each cell the `field` column names (a row that could not be
    split — `raw_line` set — is retyped whole), taking good values from a row that loaded."""
    fields = list(GENERIC_HEADERS) if row.get("raw_line") else [f for f in row["field"].split("; ") if f]
    fixed = dict(row)
    for name in fields:
        fixed[name] = f"{KEYS[name]}{number:04d}" if name in KEYS else donor[name]
    return fixed


def test_rejects_csv_is_fixed_and_validates_again(tmp_path: Path) -> None:
    report = tmp_path / "report"
    first = validate_cli(SAMPLE_DIR / "leads.csv", "--report-dir", str(report))
    assert first.returncode == 1
    rejects_path = report / "rejects.csv"
    assert stat.S_IMODE(rejects_path.stat().st_mode) == 0o600
    with rejects_path.open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == [*GENERIC_HEADERS, *APPENDED, "raw_line"]  # original columns first, as read
    rejects = read_csv(rejects_path)
    ragged = [r for r in rejects if r["code"] == "ragged-row"]
    assert ragged and all(r["raw_line"] and not r["Contact ID"] for r in ragged)  # its text, as in the file
    assert all(r["code"] and r["reason"] for r in rejects)

    # Checked again as it is: the same problems (no internal error, no new ones from our columns).
    again = json.loads(validate_cli(rejects_path, "--format", "json").stdout)
    assert again["rows_read"] == len(rejects)
    assert set(again["rows_by_code"]) <= {code for r in rejects for code in r["code"].split("; ")} | {
        "missing-required"  # the ragged rows' cells are empty until retyped
    }

    valid = read_csv(report / "cases.csv")[0]
    source = {int(n): r for n, r in enumerate(read_csv(SAMPLE_DIR / "leads.csv"), start=2)}
    donor = source[int(valid["source_row"])]
    fixed = [fix(row, donor, number) for number, row in enumerate(rejects)]
    fixed_path = tmp_path / "rejects-fixed.csv"
    with fixed_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(fixed)
    checked = validate_cli(fixed_path, "--format", "json")
    assert checked.returncode == 0, checked.stdout
    data = json.loads(checked.stdout)
    assert data["rows_read"] == data["rows_valid"] == len(rejects)


def test_a_source_column_named_like_ours_is_a_usage_error_not_a_crash(tmp_path: Path) -> None:
    old_style = tmp_path / "rejects.csv"
    old_style.write_text("source_file,source_row,errors,Contact ID\nleads.csv,9,bad,C1\n", encoding="utf-8")
    done = validate_cli(old_style)
    assert done.returncode == 2
    assert "'source_file' and 'source_row'" in done.stderr and "kayse_source_row" in done.stderr
    assert "Traceback" not in done.stderr


def _load(sandbox: Any, ledger: Path, source: Path) -> run.LoadOutcome:
    connection = Connection(sandbox.base_url, SANDBOX_TEST_KEY)
    return run.load([source], GENERIC_MAPPING, connection=connection, ledger_path=ledger)


def _write(outcome: run.LoadOutcome, folder: Path) -> None:
    assert outcome.result is not None
    write_validation_report(outcome.validation, folder)
    write_load_report(outcome.result, outcome.plan, folder, validation=outcome.validation)


def test_success_csv_holds_the_kayse_ids_of_every_row_loaded(sandbox: Any, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    outcome = _load(sandbox, ledger, SAMPLE_DIR / "leads.csv")
    _write(outcome, tmp_path / "first")
    success = read_csv(tmp_path / "first" / "success.csv")
    assert list(success[0]) == [
        "source_file", "source_row", "client_key", "kayse_client_id", "case_key", "kayse_case_id", "action",
    ]  # fmt: skip
    state = sandbox.state()
    cases = {c["id"]: c for c in state["cases"] if not c.get("deleted")}
    clients = {c["id"]: c for c in state["clients"] if not c.get("deleted")}
    valid_rows = outcome.validation.cases.select("source_row", "external_source_id").rows()
    assert sorted((int(r["source_row"]), r["case_key"]) for r in success) == sorted(
        (row, f"import:{case_id}") for row, case_id in valid_rows
    )
    for row in success:
        case = cases[int(row["kayse_case_id"])]  # the ids are Kayse's own
        assert f"import:{case['external_source_id']}" == row["case_key"] and row["action"] == "created"
        assert case["client_ids"] == [int(row["kayse_client_id"])]
        assert f"import:{clients[int(row['kayse_client_id'])]['external_source_id']}" == row["client_key"]
    for name in ("success.csv", "failed.csv", "load.json", "report.html", "annotated.xlsx"):
        assert stat.S_IMODE((tmp_path / "first" / name).stat().st_mode) == 0o600
    html = (tmp_path / "first" / "report.html").read_text(encoding="utf-8")
    assert 'id="load-steps"' in html and html.count("<tr><td>") >= 5
    assert f"Requests sent: <strong>{outcome.result.requests_sent:,}</strong>" in html  # type: ignore[union-attr]
    assert sum(s.requests for s in outcome.result.steps.values()) == outcome.result.requests_sent  # type: ignore[union-attr]


def test_failed_csv_carries_the_refused_rows_original_columns(sandbox: Any, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    first = _load(sandbox, ledger, SAMPLE_DIR / "leads.csv")
    source_rows = read_csv(SAMPLE_DIR / "leads.csv")
    changed = tmp_path / "leads.csv"
    with changed.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(source_rows[0]))
        writer.writeheader()
        writer.writerows({**r, "Description": "updated"} for r in source_rows)
    gone = first.validation.cases.row(0, named=True)
    case = next(c for c in sandbox.state()["cases"] if c["external_source_id"] == gone["external_source_id"])
    KayseClient(sandbox.base_url, SANDBOX_TEST_KEY).cases.delete(case["id"])  # deleted in the web app
    second = _load(sandbox, ledger, changed)
    _write(second, tmp_path / "second")
    (failed,) = read_csv(tmp_path / "second" / "failed.csv")
    assert list(failed)[: len(GENERIC_HEADERS)] == list(GENERIC_HEADERS)
    assert failed["Case ID"] == gone["external_source_id"] and failed["Description"] == "updated"
    assert failed["kayse_source_row"] == str(gone["source_row"]) and failed["kind"] == "case"
    assert "--recreate" in failed["reason"]
    success = read_csv(tmp_path / "second" / "success.csv")
    assert {r["action"] for r in success} == {"updated"} and len(success) == first.validation.cases.height - 1
    assert os.path.exists(tmp_path / "second" / "report.html")
