"""The CLI's outer contract: help works, unknown commands are usage errors (exit 2)."""

import subprocess
import sys


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
    from pathlib import Path

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
