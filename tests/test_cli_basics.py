"""The CLI's outer contract: help works, unknown commands are usage errors (exit 2)."""

import json
import subprocess
import sys
from pathlib import Path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True)


def test_help_lists_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "validate" in result.stdout


def test_unknown_command_is_usage_error() -> None:
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_every_command_is_documented_in_the_readme() -> None:
    from pipeline.cli import app

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    commands = [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    assert len(commands) >= 8
    undocumented = [name for name in commands if f"kayse-etl {name}" not in readme]
    assert undocumented == []


def test_a_bug_exits_4_not_1_so_it_never_looks_like_rejected_rows() -> None:
    code = (
        "import sys, pipeline.run as run\n"
        "def broken(*a, **k): raise RuntimeError('simulated bug')\n"
        "run.validate = broken\n"
        "sys.argv = ['kayse-etl', 'validate', 'x.csv', '--mapping', 'y.yaml']\n"
        "from pipeline.cli import main\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 4
    assert "simulated bug" in result.stderr
    assert "internal error: this is a bug in kayse-etl" in result.stderr


def test_validate_ends_without_teardown_yet_loses_no_output_nor_exit_code(tmp_path: Path) -> None:
    # `python -m pipeline validate` ends with os._exit (run_and_exit): every byte of its output
    # must still reach the pipe, its exit code must be the command's own, and the reports be whole.
    args = ["validate", "sample_data/leads.csv", "--mapping", "mappings/generic.yaml", "--format", "json"]
    result = run_cli(*args, "--report-dir", str(tmp_path / "report"))
    summary = json.loads(result.stdout)  # the whole document, flushed before the exit
    assert result.returncode == (1 if summary["rows_rejected"] else 0)
    assert "Report written to" in result.stderr
    written = json.loads((tmp_path / "report" / "summary.json").read_text(encoding="utf-8"))
    assert written["rows_read"] == summary["rows_read"] > 0
    assert not list((tmp_path / "report").glob(".*.tmp"))  # no temporary file left unrenamed


def test_other_commands_still_end_through_the_interpreter() -> None:
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('teardown ran'))\n"
        "sys.argv = ['kayse-etl', 'no-such-command']\n"
        "from pipeline.cli import run_and_exit\n"
        "run_and_exit()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2 and "teardown ran" in result.stdout


def test_the_installed_script_is_the_entry_point_that_exits_fast() -> None:
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "kayse-etl"]
    assert script.value == "pipeline.cli:run_and_exit"
