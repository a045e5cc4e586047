"""The validate benchmark: `kayse-etl validate --report-dir` against a bare polars read of the same file.

The figures that matter are ratios to polars' own read of the same file, timed in the same run
on the same machine: they say what validation costs over merely reading the bytes, and stay
comparable across machines. Both sides run as whole child processes (interpreter start,
imports, reading; for validate also mapping, validating and writing every report file), in
alternation, `rounds` times each; the medians are compared, so a burst of load from another
job on a shared machine hits both sides alike. Peak memory is each child's own ru_maxrss (from
wait4), so the baseline's peak is polars' own read; this process never imports polars nor
builds the files itself (a child's ru_maxrss starts from its parent's size at the fork).

Each round also times `kayse-etl validate` without --report-dir (the checks and the summary,
no report file): the issue's goal is stated for `validate`, its measurement for `validate
--report-dir`, and the two figures together show what the report files cost.

Two inputs: a CSV (default 1,000,000 rows, against `polars.read_csv(infer_schema=False)`) and
a workbook (default 100,000 rows, against `polars.read_excel`). Never commit the generated
files: they go to a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
MAPPING = ROOT / "mappings" / "generic.yaml"
DEFAULT_ROWS = 1_000_000
DEFAULT_XLSX_ROWS = 100_000
DEFAULT_ROUNDS = 3
GOALS = {"csv": 3.0, "xlsx": 1.5}  # at most this many times polars' own read
GENERATE = (
    "import sys; from bench.generate import write_generic_export; "
    "write_generic_export(sys.argv[1], int(sys.argv[2]), seed=int(sys.argv[3]), defect_rate=0.02, fmt=sys.argv[4])"
)
BASELINES = {
    "csv": "import sys, polars as pl; print(pl.read_csv(sys.argv[1], infer_schema=False).height)",
    "xlsx": "import sys, polars as pl; print(pl.read_excel(sys.argv[1]).height)",
}
FLOOR = "; ".join(
    [
        "import sys, polars as pl",
        "frame = pl.read_csv(sys.argv[1], infer_schema=False) if sys.argv[1].endswith('.csv') "
        "else pl.read_excel(sys.argv[1])",
        "frame.write_csv(sys.argv[2])",
        "print(frame.height)",
    ]
)
"""A floor under any validate with reports: read the file, then write it once as CSV, checking
nothing. validate writes clients.csv and cases.csv, which together hold about as many bytes as
the source, so its own time can't come below this; the ratio of this floor to the read says how
much of a goal is left for the checks and the workbook."""


@dataclass(frozen=True)
class Child:
    """One whole child process: wall seconds and its peak resident memory."""

    seconds: float
    cpu_seconds: float  # user + system: less swayed than wall time by other jobs on the machine
    peak_memory_mb: float


@dataclass(frozen=True)
class ValidateBenchResult:
    fmt: Literal["csv", "xlsx"]
    rows: int
    file_mb: float
    generate_seconds: float
    rounds: int
    baseline_seconds: float  # median over the rounds: the bare polars read, a whole process
    validate_seconds: float  # median: the whole `kayse-etl validate ... --report-dir` process
    ratio: float  # validate_seconds / baseline_seconds
    baseline_cpu_seconds: float  # medians of user + system time
    validate_cpu_seconds: float
    cpu_ratio: float
    goal: float
    baseline_peak_memory_mb: float  # the largest of the rounds
    peak_memory_mb: float  # of the validate process, the largest of the rounds
    memory_ratio: float  # peak_memory_mb / baseline_peak_memory_mb
    exit_code: int  # 1 expected: the generated file has ~2% defective rows
    baseline_all: tuple[float, ...]
    validate_all: tuple[float, ...]
    floor_seconds: float  # median: read + write once as CSV, no checks (see FLOOR)
    floor_ratio: float  # floor_seconds / baseline_seconds
    check_seconds: float  # median: `kayse-etl validate` without --report-dir (the summary only)
    check_ratio: float  # check_seconds / baseline_seconds
    check_cpu_seconds: float
    check_peak_memory_mb: float  # the largest of the rounds

    def describe(self) -> str:
        what = "polars.read_csv(infer_schema=False)" if self.fmt == "csv" else "polars.read_excel"
        verdict = "within" if self.ratio <= self.goal else "OVER"
        return "\n".join(
            [
                f"validate benchmark, {self.fmt}: {self.rows:,} rows ({self.file_mb:,.0f} MB, generated in "
                f"{self.generate_seconds:.1f} s), {self.rounds} alternated rounds, medians:",
                f"  baseline  {what + ':':<45}{self.baseline_seconds:8.2f} s  "
                f"peak {self.baseline_peak_memory_mb:6.0f} MB",
                f"  kayse-etl validate --report-dir (whole process): {self.validate_seconds:8.2f} s  "
                f"peak {self.peak_memory_mb:6.0f} MB",
                f"  ratio validate / baseline:  time {self.ratio:5.2f} x ({verdict} the goal of "
                f"{self.goal:g} x), memory {self.memory_ratio:4.2f} x, CPU time {self.cpu_ratio:5.2f} x "
                f"({self.validate_cpu_seconds:.2f} s / {self.baseline_cpu_seconds:.2f} s)",
                f"  kayse-etl validate, no report files (whole process): {self.check_seconds:6.2f} s  "
                f"peak {self.check_peak_memory_mb:6.0f} MB",
                f"  ratio validate (no report files) / baseline: time {self.check_ratio:5.2f} x "
                f"({'within' if self.check_ratio <= self.goal else 'OVER'} {self.goal:g} x), memory "
                f"{self.check_peak_memory_mb / self.baseline_peak_memory_mb:4.2f} x, CPU time "
                f"{self.check_cpu_seconds / self.baseline_cpu_seconds:5.2f} x",
                f"  floor: the same read + one CSV write of it, no checks: {self.floor_seconds:.2f} s = "
                f"{self.floor_ratio:.2f} x the read",
            ]
        )


def _max_rss_mb(usage: object) -> float:
    # Linux reports kilobytes, macOS bytes.
    maxrss = float(getattr(usage, "ru_maxrss", 0))
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def _run_child(command: list[str], folder: Path, name: str) -> tuple[Child, int]:
    with (folder / f"{name}.out").open("wb") as out, (folder / f"{name}.err").open("wb") as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    exit_code = os.waitstatus_to_exitcode(status)
    child.returncode = exit_code  # reaped by wait4; keep Popen from waiting again
    cpu = float(getattr(usage, "ru_utime", 0.0)) + float(getattr(usage, "ru_stime", 0.0))
    return Child(seconds, cpu, _max_rss_mb(usage)), exit_code


def _baseline(source: Path, fmt: str, folder: Path, rows: int) -> Child:
    child, exit_code = _run_child([sys.executable, "-c", BASELINES[fmt], str(source)], folder, "baseline")
    read = (folder / "baseline.out").read_text(encoding="utf-8").strip()
    if exit_code != 0 or read != str(rows):
        detail = (folder / "baseline.err").read_text(encoding="utf-8", errors="replace")[-2000:]
        raise RuntimeError(f"baseline read {read!r} rows (exit {exit_code}), expected {rows}:\n{detail}")
    return child


def _floor(source: Path, folder: Path, rows: int) -> Child:
    command = [sys.executable, "-c", FLOOR, str(source), str(folder / "floor.csv")]
    child, exit_code = _run_child(command, folder, "floor")
    if exit_code != 0:
        detail = (folder / "floor.err").read_text(encoding="utf-8", errors="replace")[-2000:]
        raise RuntimeError(f"the floor's child exited {exit_code}:\n{detail}")
    return child


def _validate(source: Path, folder: Path, rows: int, *, report_files: bool = True) -> tuple[Child, int]:
    """One `kayse-etl validate` process: with --report-dir (every report file written), or
    without (the checks and the summary only)."""
    command = [sys.executable, "-m", "pipeline", "validate", str(source), "--mapping", str(MAPPING)]
    command += [*(["--report-dir", str(folder / "report")] if report_files else []), "--format", "json"]
    child, exit_code = _run_child(command, folder, "validate")
    if exit_code not in (0, 1):
        detail = (folder / "validate.err").read_text(encoding="utf-8", errors="replace")[-2000:]
        raise RuntimeError(f"kayse-etl validate exited {exit_code}:\n{detail}")
    report = json.loads((folder / "validate.out").read_text(encoding="utf-8"))
    if report["rows_read"] != rows:
        raise RuntimeError(f"validate read {report['rows_read']} rows, expected {rows}")
    return child, exit_code


def run_validate_bench(
    rows: int = DEFAULT_ROWS,
    *,
    fmt: Literal["csv", "xlsx"] = "csv",
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
) -> ValidateBenchResult:
    """Generate the export in a temp dir, then time the baseline and validate alternately."""
    with tempfile.TemporaryDirectory(prefix="kayse-etl-bench-") as tmp:
        folder = Path(tmp)
        source = folder / f"leads.{fmt}"
        started = time.perf_counter()
        # In a child of its own: Linux keeps a process's peak memory across fork and exec, so a
        # parent that had built the file itself would lend its own peak to every child measured.
        subprocess.run(
            [sys.executable, "-c", GENERATE, str(source), str(rows), str(seed), fmt], cwd=ROOT, check=True
        )
        generate_seconds = time.perf_counter() - started
        baselines: list[Child] = []
        validates: list[Child] = []
        floors: list[Child] = []
        checks: list[Child] = []
        exit_code = 0
        for round_number in range(rounds):
            # Alternate which side goes first, so neither always runs on a warmer cache.
            order = ("baseline", "validate") if round_number % 2 == 0 else ("validate", "baseline")
            for side in order:
                if side == "baseline":
                    baselines.append(_baseline(source, fmt, folder, rows))
                    floors.append(_floor(source, folder, rows))
                else:
                    child, exit_code = _validate(source, folder, rows)
                    validates.append(child)
                    checks.append(_validate(source, folder, rows, report_files=False)[0])
        baseline_seconds = statistics.median(c.seconds for c in baselines)
        validate_seconds = statistics.median(c.seconds for c in validates)
        baseline_cpu = statistics.median(c.cpu_seconds for c in baselines)
        validate_cpu = statistics.median(c.cpu_seconds for c in validates)
        baseline_peak = max(c.peak_memory_mb for c in baselines)
        peak = max(c.peak_memory_mb for c in validates)
        return ValidateBenchResult(
            fmt=fmt,
            rows=rows,
            file_mb=source.stat().st_size / 1e6,
            generate_seconds=generate_seconds,
            rounds=rounds,
            baseline_seconds=baseline_seconds,
            validate_seconds=validate_seconds,
            ratio=validate_seconds / baseline_seconds,
            baseline_cpu_seconds=baseline_cpu,
            validate_cpu_seconds=validate_cpu,
            cpu_ratio=validate_cpu / baseline_cpu,
            goal=GOALS[fmt],
            baseline_peak_memory_mb=baseline_peak,
            peak_memory_mb=peak,
            memory_ratio=peak / baseline_peak,
            exit_code=exit_code,
            baseline_all=tuple(round(c.seconds, 3) for c in baselines),
            validate_all=tuple(round(c.seconds, 3) for c in validates),
            floor_seconds=statistics.median(c.seconds for c in floors),
            floor_ratio=statistics.median(c.seconds for c in floors) / baseline_seconds,
            check_seconds=statistics.median(c.seconds for c in checks),
            check_ratio=statistics.median(c.seconds for c in checks) / baseline_seconds,
            check_cpu_seconds=statistics.median(c.cpu_seconds for c in checks),
            check_peak_memory_mb=max(c.peak_memory_mb for c in checks),
        )


@dataclass(frozen=True)
class AnnotatedBenchResult:
    rows: int  # the largest file whose annotated.xlsx shows every row (above it, only rejected rows)
    seconds: float  # write_annotated_workbook alone
    baseline_seconds: float  # polars.read_csv of that same file
    ratio: float

    def describe(self) -> str:
        return (
            f"annotated.xlsx of {self.rows:,} rows (every row shown): {self.seconds:.2f} s"
            f" = {self.ratio:.0f} x its read"
        )


ANNOTATED = """
import json, sys, time
from pathlib import Path
import polars as pl
from bench.generate import write_generic_export
from pipeline import run
from pipeline.report.annotated import write_annotated_workbook

folder, rows, seed, mapping = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
source = folder / "annotated-source.csv"
write_generic_export(source, rows, seed=seed, defect_rate=0.02, fmt="csv")
started = time.perf_counter()
pl.read_csv(source, infer_schema=False)
baseline = time.perf_counter() - started
result = run.validate([source], mapping)
started = time.perf_counter()
write_annotated_workbook(result, folder / "annotated.xlsx")
print(json.dumps([time.perf_counter() - started, baseline]))
"""


def run_annotated_bench(rows: int, *, seed: int = 0) -> AnnotatedBenchResult:
    """Time the workbook on the largest file it shows whole (above, only rejected rows are shown,
    so the big file's own workbook says little), in a child, as the other figures are."""
    from pipeline.report.annotated import ALL_ROWS_UP_TO

    rows = min(rows, ALL_ROWS_UP_TO)
    with tempfile.TemporaryDirectory(prefix="kayse-etl-bench-") as tmp:
        command = [sys.executable, "-c", ANNOTATED, tmp, str(rows), str(seed), str(MAPPING)]
        done = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
        seconds, baseline = json.loads(done.stdout.strip().splitlines()[-1])
    return AnnotatedBenchResult(rows, seconds, baseline, seconds / baseline)


def main(
    rows: int = DEFAULT_ROWS, xlsx_rows: int = DEFAULT_XLSX_ROWS, rounds: int = DEFAULT_ROUNDS
) -> list[ValidateBenchResult]:
    results = []
    for fmt, count in (("csv", rows), ("xlsx", xlsx_rows)):
        if count <= 0:
            continue
        result = run_validate_bench(count, fmt=fmt, rounds=rounds)  # type: ignore[arg-type]
        print(result.describe())
        print(json.dumps({"validate_bench": asdict(result)}))
        results.append(result)
    if rows > 0:
        annotated = run_annotated_bench(rows)
        print(annotated.describe())
        print(json.dumps({"annotated_bench": asdict(annotated)}))
    return results
