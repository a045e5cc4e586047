"""The validate benchmark's plumbing on small files (figures are printed, never asserted)."""

from __future__ import annotations

import pytest

from bench.validate_bench import run_annotated_bench, run_validate_bench


@pytest.mark.parametrize(("fmt", "rows"), [("csv", 3000), ("xlsx", 300)])
def test_benchmark_runs_both_sides_alternately_and_measures_them(fmt: str, rows: int) -> None:
    result = run_validate_bench(rows=rows, fmt=fmt, rounds=2, seed=1)  # type: ignore[arg-type]
    assert result.rows == rows and result.rounds == 2
    assert result.exit_code == 1  # 2% of the rows are defective on purpose
    assert len(result.baseline_all) == len(result.validate_all) == 2
    assert result.baseline_seconds > 0 and result.validate_seconds > 0
    assert result.ratio == result.validate_seconds / result.baseline_seconds
    assert result.peak_memory_mb > 10 and result.baseline_peak_memory_mb > 10  # each child's own peak
    assert result.memory_ratio == result.peak_memory_mb / result.baseline_peak_memory_mb
    assert result.floor_seconds > 0 and result.floor_ratio == result.floor_seconds / result.baseline_seconds
    assert result.check_seconds > 0 and result.check_ratio == result.check_seconds / result.baseline_seconds
    assert result.check_peak_memory_mb > 10
    assert "floor" in result.describe() and "no report files" in result.describe()
    assert f"{rows:,} rows" in result.describe() and "medians" in result.describe()


def test_annotated_workbook_is_timed_on_a_file_it_shows_whole() -> None:
    result = run_annotated_bench(3000, seed=1)
    assert result.rows == 3000 and result.seconds > 0 and result.baseline_seconds > 0
    assert result.ratio == result.seconds / result.baseline_seconds
    assert "annotated.xlsx of 3,000 rows" in result.describe()
