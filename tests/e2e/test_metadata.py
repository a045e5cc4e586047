"""`kayse-etl metadata`: the mapping's allowed case types checked against the account, one request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import SANDBOX_TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
GENERIC = ROOT / "mappings" / "generic.yaml"


def metadata(sandbox: Any, mapping: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAYSE_API_KEY": SANDBOX_TEST_KEY, "KAYSE_BASE_URL": sandbox.base_url}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "metadata", "--mapping", str(mapping)],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_the_generic_mapping_matches_the_sandbox_account(sandbox: Any) -> None:
    result = metadata(sandbox, GENERIC)
    assert result.returncode == 0, result.stderr
    assert "personal_injury" in result.stdout
    assert "all exist in the account" in result.stdout
    assert [r["path"] for r in sandbox.request_log()] == ["/v1/metadata"]


def test_a_case_type_unknown_to_kayse_is_named_and_exits_1(sandbox: Any, tmp_path: Path) -> None:
    text = GENERIC.read_text(encoding="utf-8")
    assert "criminal]" in text
    mapping = tmp_path / "firm.yaml"
    mapping.write_text(text.replace("criminal]", "criminal, bankruptcy]"), encoding="utf-8")
    result = metadata(sandbox, mapping)
    assert result.returncode == 1
    assert "bankruptcy" in result.stdout.split("would be refused")[1]
