"""The validate benchmark: how long `kayse-etl validate` takes on a 1,000,000-row export.

The figure that matters is the ratio to a bare `polars.read_csv` of the same file, timed in the
same run on the same machine: it says what validation costs over merely reading the bytes, and
stays comparable across machines. The CLI runs as a child process (imports, reading, mapping,
validating, writing the report files), so its peak memory is the child's own ru_maxrss.

Never commit the generated file: it goes to a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from bench.generate import write_generic_export

ROOT = Path(__file__).resolve().parent.parent
MAPPING = ROOT / "mappings" / "generic.yaml"
DEFAULT_ROWS = 1_000_000


@dataclass(frozen=True)
class ValidateBenchResult:
    rows: int
    file_mb: float
    generate_seconds: float
    baseline_seconds: float  # polars.read_csv(path, infer_schema=False), in this process
    validate_seconds: float  # the whole `kayse-etl validate ... --report-dir` child process
    ratio: float  # validate_seconds / baseline_seconds
    peak_memory_mb: float  # ru_maxrss of the validate child
    exit_code: int  # 1 expected: the generated file has ~2% defective rows
    annotated_rows: int  # the workbook's own line: a file small enough to show every row
    annotated_seconds: float  # write_annotated_workbook alone, in this process
    annotated_ratio: float  # annotated_seconds / polars.read_csv of that same file

    def describe(self) -> str:
        return "\n".join(
            [
                f"validate benchmark: {self.rows:,} rows ({self.file_mb:,.0f} MB CSV, generated in "
                f"{self.generate_seconds:.1f} s)",
                f"  baseline  polars.read_csv(infer_schema=False): {self.baseline_seconds:8.2f} s",
                f"  kayse-etl validate --report-dir (whole process): {self.validate_seconds:8.2f} s",
                f"  ratio validate / baseline:                       {self.ratio:8.1f} x",
                f"  peak memory of the validate process:             {self.peak_memory_mb:8.0f} MB",
                f"  annotated.xlsx of {self.annotated_rows:,} rows (every row shown): {self.annotated_seconds:8.2f} s"
                f" = {self.annotated_ratio:.0f} x its read",
            ]
        )


def _max_rss_mb(usage: resource.struct_rusage) -> float:
    # Linux reports kilobytes, macOS bytes.
    return usage.ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else usage.ru_maxrss / 1024


def run_validate_bench(rows: int = DEFAULT_ROWS, *, seed: int = 0) -> ValidateBenchResult:
    """Generate the export in a temp dir, time the baseline read, then time the CLI on it."""
    with tempfile.TemporaryDirectory(prefix="kayse-etl-bench-") as tmp:
        folder = Path(tmp)
        source = folder / "leads.csv"
        started = time.perf_counter()
        write_generic_export(source, rows, seed=seed, defect_rate=0.02, fmt="csv")
        generate_seconds = time.perf_counter() - started

        started = time.perf_counter()
        baseline = pl.read_csv(source, infer_schema=False)
        baseline_seconds = time.perf_counter() - started
        if baseline.height != rows:
            raise RuntimeError(f"baseline read {baseline.height} rows, expected {rows}")
        del baseline

        command = [sys.executable, "-m", "pipeline", "validate", str(source), "--mapping", str(MAPPING)]
        command += ["--report-dir", str(folder / "report"), "--format", "json"]
        with (folder / "stdout.json").open("wb") as out, (folder / "stderr.txt").open("wb") as err:
            started = time.perf_counter()
            child = subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT)
            _, status, usage = os.wait4(child.pid, 0)
            validate_seconds = time.perf_counter() - started
        exit_code = os.waitstatus_to_exitcode(status)
        child.returncode = exit_code  # reaped by wait4; keep Popen from waiting again
        if exit_code not in (0, 1):
            detail = (folder / "stderr.txt").read_text(encoding="utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"kayse-etl validate exited {exit_code}:\n{detail}")
        report = json.loads((folder / "stdout.json").read_text(encoding="utf-8"))
        if report["rows_read"] != rows:
            raise RuntimeError(f"validate read {report['rows_read']} rows, expected {rows}")
        annotated_rows, annotated_seconds, annotated_baseline = _annotated_bench(folder, rows, seed)
        return ValidateBenchResult(
            rows=rows,
            file_mb=source.stat().st_size / 1e6,
            generate_seconds=generate_seconds,
            baseline_seconds=baseline_seconds,
            validate_seconds=validate_seconds,
            ratio=validate_seconds / baseline_seconds,
            peak_memory_mb=_max_rss_mb(usage),
            exit_code=exit_code,
            annotated_rows=annotated_rows,
            annotated_seconds=annotated_seconds,
            annotated_ratio=annotated_seconds / annotated_baseline,
        )


def _annotated_bench(folder: Path, rows: int, seed: int) -> tuple[int, float, float]:
    """Time the workbook on the largest file it shows whole (above, only rejected rows are shown,
    so the big file's own workbook says little): (rows, seconds, seconds to read the file)."""
    from pipeline import run
    from pipeline.report.annotated import ALL_ROWS_UP_TO, write_annotated_workbook

    rows = min(rows, ALL_ROWS_UP_TO)
    source = folder / "annotated-source.csv"
    write_generic_export(source, rows, seed=seed, defect_rate=0.02, fmt="csv")
    started = time.perf_counter()
    pl.read_csv(source, infer_schema=False)
    baseline = time.perf_counter() - started
    result = run.validate([source], MAPPING)
    started = time.perf_counter()
    write_annotated_workbook(result, folder / "annotated.xlsx")
    return rows, time.perf_counter() - started, baseline


def main(rows: int = DEFAULT_ROWS) -> ValidateBenchResult:
    result = run_validate_bench(rows)
    print(result.describe())
    print(json.dumps({"validate_bench": asdict(result)}))
    return result
