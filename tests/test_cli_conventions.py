"""The conventions people expect of a command line: --version, -h, completion, --quiet and
--verbose, --format json on every command (errors included), help in words, a hint on every
usage error, every mapping mistake at once, did-you-mean for columns, Excel lock files skipped."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import typer

from pipeline.cli import app
from tests.conftest import SANDBOX_TEST_KEY

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "leads.csv"
GENERIC = ROOT / "mappings" / "generic.yaml"


def kayse_etl(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KAYSE_")}
    clean.update({"COLUMNS": "200", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], env=clean, capture_output=True, text=True, cwd=cwd
    )


def test_version() -> None:
    result = kayse_etl("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"kayse-etl {version('kayse-etl')}"


@pytest.mark.parametrize("command", [[], ["load"], ["mappings"], ["mappings", "init"], ["sandbox"]])
def test_dash_h_is_help(command: list[str]) -> None:
    short, long = kayse_etl(*command, "-h"), kayse_etl(*command, "--help")
    assert short.returncode == long.returncode == 0
    assert short.stdout == long.stdout and "Usage: kayse-etl" in short.stdout


def test_shell_completion_is_offered() -> None:
    shown = kayse_etl("--show-completion", "bash")
    assert shown.returncode == 0
    assert "_KAYSE_ETL_COMPLETE" in shown.stdout
    assert "--install-completion" in kayse_etl("--help").stdout


def all_commands() -> list[list[str]]:
    """Every command and group, by the words that name it ([] is kayse-etl itself)."""
    found: list[list[str]] = []

    def walk(words: list[str], command: Any) -> None:
        found.append(words)
        for name, sub in getattr(command, "commands", {}).items():
            walk([*words, name], sub)

    walk([], typer.main.get_command(app))
    return found


@pytest.mark.parametrize("command", all_commands(), ids=lambda c: " ".join(c) or "kayse-etl")
def test_help_reads_as_words_not_types(command: list[str]) -> None:
    text = kayse_etl(*command, "--help").stdout
    types = re.findall(r"<(?:bool|str|int|float|path|list\[[^\]]*\]|int range|float range)>", text, re.I)
    assert types == [], text


def test_every_usage_error_in_the_code_carries_a_hint() -> None:
    """Scans every UserError(...) and mapping `fail(...)`: a message without a hint leaves a
    person with a problem and no next step."""
    bare = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name == "UserError" or (name == "fail" and "mapping" in path.name):
                positional = 2 if name == "UserError" else 3
                if len(node.args) < positional and not any(k.arg == "hint" for k in node.keywords):
                    bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bare == []


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "missing.csv", "-m", str(GENERIC), "--format", "json"],
        ["load", str(SAMPLE), "-m", str(GENERIC), "--format", "json"],  # no API key
        ["runs", "--ledger", "/nonexistent/l.sqlite", "--format", "json"],
        ["mappings", "init", "missing.xlsx", "--format", "json"],
        ["load", str(SAMPLE), "-m", str(GENERIC), "--max-rejected", "lots", "--format", "json"],
    ],
)
def test_errors_under_format_json_are_one_json_object_on_stdout(args: list[str]) -> None:
    result = kayse_etl(*args)
    assert result.returncode == 2
    body = json.loads(result.stdout)
    assert set(body) == {"error", "hint", "exit_code"}
    assert body["exit_code"] == 2 and body["error"] and body["hint"]
    assert result.stderr == ""


def test_the_same_error_in_text_is_two_lines_on_stderr() -> None:
    result = kayse_etl("validate", "missing.csv", "-m", str(GENERIC))
    assert result.returncode == 2 and result.stdout == ""
    assert re.fullmatch(r"error: .+\nhint: .+\n", result.stderr), result.stderr


def test_quiet_prints_nothing_but_the_exit_code_says_it(tmp_path: Path) -> None:
    quiet = kayse_etl("--quiet", "validate", str(SAMPLE), "-m", str(GENERIC), "--report-dir", str(tmp_path))
    assert quiet.returncode == 1
    assert quiet.stdout == "" and quiet.stderr == ""
    assert (tmp_path / "rejects.csv").exists()
    as_json = kayse_etl("-q", "validate", str(SAMPLE), "-m", str(GENERIC), "--format", "json")
    assert json.loads(as_json.stdout)["rows_rejected"] == 28  # JSON asked for is still printed
    both = kayse_etl("--quiet", "--verbose", "validate", str(SAMPLE), "-m", str(GENERIC))
    assert both.returncode == 2 and "hint:" in both.stderr


def test_verbose_logs_each_request_but_never_the_key_or_personal_data(sandbox: Any, tmp_path: Path) -> None:
    env = {"KAYSE_API_KEY": SANDBOX_TEST_KEY, "KAYSE_BASE_URL": sandbox.base_url}
    ledger = tmp_path / "l.sqlite"
    result = kayse_etl("--verbose", "load", str(SAMPLE), "-m", str(GENERIC), "--ledger", str(ledger), env=env)
    assert result.returncode == 1, result.stderr
    debug = [line for line in result.stderr.splitlines() if " DEBUG pipeline.kayse: " in line]
    assert any("POST /v1/clients/bulk → 200" in line for line in debug), result.stderr
    assert len(debug) == len(sandbox.request_log())
    everything = result.stdout + result.stderr
    assert SANDBOX_TEST_KEY not in everything
    for personal in ("tpatel@mail.example.com", "Patel", "(512) 555-0131", "+15125550131"):
        assert personal not in result.stderr
    plain = kayse_etl("load", str(SAMPLE), "-m", str(GENERIC), "--ledger", str(ledger), env=env)
    assert " DEBUG " not in plain.stderr


def test_every_command_speaks_json(sandbox: Any, tmp_path: Path) -> None:
    env = {"KAYSE_API_KEY": SANDBOX_TEST_KEY, "KAYSE_BASE_URL": sandbox.base_url}
    ledger = str(tmp_path / "l.sqlite")
    loaded = kayse_etl(
        "load", str(SAMPLE), "-m", str(GENERIC), "--ledger", ledger, "--format", "json", env=env
    )
    assert json.loads(loaded.stdout)["load"]["outcome"] == "rejected"
    history = json.loads(kayse_etl("runs", "--ledger", ledger, "--format", "json").stdout)
    assert history[0]["id"] == 1 and history[0]["outcome"] == "rejected"
    assert json.loads(kayse_etl("uncertain", "--ledger", ledger, "--format", "json").stdout) == {
        "records": [],
        "messages": [],
    }
    check = json.loads(kayse_etl("metadata", "-m", str(GENERIC), "--format", "json", env=env).stdout)
    assert check["unknown_types"] == [] and "personal_injury" in check["account_types"]
    settled = kayse_etl(
        "resolve", "client", "C000001", "--recreate", "--ledger", ledger, "--format", "json", env=env
    )
    assert json.loads(settled.stdout)["settled"] == [
        {"kind": "client", "key": "import:C000001", "kayse_id": None}
    ]
    refused = kayse_etl("rollback", "1", "--ledger", ledger, "--format", "json", env=env)
    assert refused.returncode == 2 and "--yes" in json.loads(refused.stdout)["hint"]
    undone = json.loads(
        kayse_etl("rollback", "1", "--ledger", ledger, "--yes", "--format", "json", env=env).stdout
    )
    assert undone["run_id"] == 1 and undone["deleted"]["case"] > 0
    drafted = json.loads(kayse_etl("mappings", "init", str(SAMPLE), "--format", "json").stdout)
    assert drafted["fields"]["first_name"] == "First Name" and drafted["text"].startswith("# Drafted")


def test_resolve_takes_the_key_with_or_without_its_prefix(sandbox: Any, tmp_path: Path) -> None:
    env = {"KAYSE_API_KEY": SANDBOX_TEST_KEY, "KAYSE_BASE_URL": sandbox.base_url}
    ledger = str(tmp_path / "l.sqlite")
    assert kayse_etl("load", str(SAMPLE), "-m", str(GENERIC), "--ledger", ledger, env=env).returncode == 1
    for key in ("import:K0000001", "K0000001"):
        settled = kayse_etl("resolve", "case", key, "--kayse-id", "7", "--ledger", ledger, env=env)
        assert settled.returncode == 0, settled.stderr
        assert "case import:K0000001: recorded as Kayse id 7" in settled.stdout
    unknown = kayse_etl("resolve", "case", "K9999999", "--recreate", "--ledger", ledger, env=env)
    assert unknown.returncode == 1 and "not in the ledger" in unknown.stderr


def write_mapping(tmp_path: Path, old: str, new: str) -> Path:
    text = GENERIC.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "m.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_every_mapping_mistake_is_reported_at_once(tmp_path: Path) -> None:
    text = GENERIC.read_text(encoding="utf-8")
    text = text.replace("    mobile: Mobile Phone", "    mobil: Mobile Phone")
    text = text.replace("date_order: MDY", "date_order: MYD")
    text = text.replace("days: 14", "days: 0")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(text, encoding="utf-8")
    result = kayse_etl("validate", str(SAMPLE), "-m", str(mapping))
    assert result.returncode == 2
    assert "has 3 problems" in result.stderr
    for words in ("client.fields.mobil is not a Kayse client field", "date_order is 'MYD'", "campaign.days"):
        assert words in result.stderr
    assert "did you mean 'mobile'?" in result.stderr


def test_a_column_that_differs_in_case_or_spaces_gets_a_did_you_mean(tmp_path: Path) -> None:
    mapping = write_mapping(tmp_path, "first_name: First Name", "first_name: First name")
    mapping.write_text(
        mapping.read_text(encoding="utf-8").replace("city: City", "city: C i t y"), encoding="utf-8"
    )
    result = kayse_etl("validate", str(SAMPLE), "-m", str(mapping))
    assert result.returncode == 2
    assert "'First name' (did you mean 'First Name'?)" in result.stderr
    assert "'C i t y' (did you mean 'City'?)" in result.stderr


def test_excel_lock_files_are_skipped_with_a_note(tmp_path: Path) -> None:
    lock = tmp_path / "~$leads.xlsx"
    lock.write_bytes(b"\x07somebody" + b"\x00" * 150)  # what Excel leaves: the owner's name, no data
    result = kayse_etl("validate", str(SAMPLE), str(lock), "-m", str(GENERIC))
    assert result.returncode == 1, result.stderr
    assert "note: skipped ~$leads.xlsx: an Excel lock file" in result.stdout
    alone = kayse_etl("validate", str(lock), "-m", str(GENERIC))
    assert alone.returncode == 2 and "only Excel lock files" in alone.stderr and "hint:" in alone.stderr


def test_validate_points_at_rejects_csv_only_when_it_wrote_one(tmp_path: Path) -> None:
    without = kayse_etl("validate", str(SAMPLE), "-m", str(GENERIC))
    assert without.returncode == 1
    assert "rows in rejects.csv" not in without.stdout and "see rejects.csv" not in without.stdout
    assert "--report-dir DIR" in without.stdout
    with_dir = kayse_etl("validate", str(SAMPLE), "-m", str(GENERIC), "--report-dir", str(tmp_path))
    assert "fix the rows in rejects.csv" in with_dir.stdout
    assert (tmp_path / "rejects.csv").exists()
