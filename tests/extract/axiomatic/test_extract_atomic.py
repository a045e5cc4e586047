"""A folder is complete or absent: a killed or failed extract never looks finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline.extract.axiomatic import extract
from pipeline.extract.axiomatic import tables as tables_module
from tests.extract.axiomatic.helpers import read_table, small, summary


def _first_extract(server: Any, out: Path) -> dict[str, Any]:
    small(server)
    extract(server.base_url, server.api_key, server.entity_id, out)
    return summary(out)


def test_a_killed_extract_leaves_the_previous_folder_intact(axiomatic: Any, tmp_path: Path) -> None:
    out = tmp_path / "crm"
    before = _first_extract(axiomatic, out)
    axiomatic.configure(faults="latency=1,delay=0.2")  # slow enough to be killed half-way
    code = (
        "import sys\n"
        "from pipeline.extract.axiomatic import extract\n"
        "extract(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4])\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, str(out)]
    )
    try:
        deadline = time.monotonic() + 60
        while len(axiomatic.request_log()) < 8 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert process.poll() is None, "the extract finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert summary(out) == before  # the old extract, untouched
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "crm"]
    assert all(name.startswith(".crm.partial-") for name in leftovers)  # hidden, never named like the target


def test_a_failure_while_writing_leaves_nothing_half_written(
    axiomatic: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "crm"
    before = _first_extract(axiomatic, out)
    rows_before = read_table(out / "leads.csv")
    written: list[str] = []
    real = tables_module.write_csv

    def write_then_fail(path: Path, table: Any) -> None:
        if len(written) == 3:
            raise OSError(28, "No space left on device", str(path))
        written.append(path.name)
        real(path, table)

    monkeypatch.setattr("pipeline.extract.axiomatic.core.write_csv", write_then_fail)
    small(axiomatic, seed=99)
    with pytest.raises(OSError):
        extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, out)
    assert summary(out) == before and read_table(out / "leads.csv") == rows_before
    assert [p.name for p in tmp_path.iterdir()] == ["crm"]  # the staging folder was removed


def test_a_first_extract_that_fails_leaves_no_folder(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic)
    axiomatic.inject("error", path="/api/crm/tasks", count=50)
    out = tmp_path / "crm"
    with pytest.raises(Exception):  # noqa: B017 - any failure; the folder is what is checked
        extract(
            axiomatic.base_url,
            axiomatic.api_key,
            axiomatic.entity_id,
            out,
            client_options={"backoff_base": 0.01, "max_retries": 1},
        )
    assert list(tmp_path.iterdir()) == []
