"""Foreseeable problems of the loader's commands end with one line, a hint and exit 2, never a
traceback, and nothing is created by mistake (e.g. a ledger where there was none)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = str(ROOT / "sample_data" / "leads.csv")
MAPPING = str(ROOT / "mappings" / "generic.yaml")


def kayse_etl(*args: str, key: str | None = "some-key-123456", base_url: str = "http://127.0.0.1:9/v1"):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAYSE_")}
    env["KAYSE_BASE_URL"] = base_url
    if key is not None:
        env["KAYSE_API_KEY"] = key
    return subprocess.run([sys.executable, "-m", "pipeline", *args], env=env, capture_output=True, text=True)


@pytest.mark.parametrize(
    ("args", "key", "message"),
    [
        (["load", SAMPLE, "-m", MAPPING], None, "no Kayse API key: looked in --api-key-file"),
        (
            ["load", SAMPLE, "-m", MAPPING, "--api-key-file", "/nonexistent/key"],
            None,
            "cannot read the API key file",
        ),
        (
            ["load", SAMPLE, "-m", MAPPING, "--ledger", "/proc/nope/l.sqlite"],
            "k-123456",
            "cannot create the ledger",
        ),
        (["load", SAMPLE, "-m", MAPPING, "--format", "xml"], "k-123456", "--format must be text or json"),
        (
            ["validate", SAMPLE, "-m", MAPPING, "--report-dir", "/proc/nope/reports"],
            None,
            "No such file or directory",
        ),
        (["runs", "--ledger", "/nonexistent/l.sqlite"], None, "no ledger at"),
        (["uncertain", "--ledger", "/nonexistent/l.sqlite"], None, "no ledger at"),
        (
            ["resolve", "client", "import:C1", "--recreate", "--ledger", "/nonexistent/l.sqlite"],
            "k-123456",
            "no ledger at",
        ),
        (
            ["resolve", "thing", "import:C1", "--recreate", "--ledger", "/nonexistent/l.sqlite"],
            "k-123456",
            "unknown kind",
        ),
        (
            ["resolve", "client", "import:C1", "--ledger", "/nonexistent/l.sqlite"],
            "k-123456",
            "exactly one of",
        ),
        (["rollback", "1", "--yes", "--ledger", "/nonexistent/l.sqlite"], "k-123456", "no ledger at"),
        # the read flags reach the reader on plan and load too (a tab split leaves one column)
        (
            ["plan", SAMPLE, "-m", MAPPING, "--delimiter", "tab", "--ledger", "/nonexistent/l.sqlite"],
            None,
            "Contact ID",
        ),
        (
            [
                "load",
                SAMPLE,
                "-m",
                MAPPING,
                "--encoding",
                "no-such-codec",
                "--ledger",
                "/nonexistent/l.sqlite",
            ],
            "k-123456",
            "no-such-codec",
        ),
    ],
)
def test_one_line_and_exit_2(args: list[str], key: str | None, message: str) -> None:
    result = kayse_etl(*args, key=key)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "some-key-123456" not in result.stderr + result.stdout
    assert not Path("/nonexistent/l.sqlite").exists()
