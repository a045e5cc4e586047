"""The validate benchmark's plumbing on a small file (figures are printed, never asserted)."""

from __future__ import annotations

from bench.validate_bench import run_validate_bench


def test_benchmark_runs_the_cli_and_measures_it() -> None:
    result = run_validate_bench(rows=3000, seed=1)
    assert result.rows == 3000
    assert result.exit_code == 1  # 2% of the rows are defective on purpose
    assert result.baseline_seconds > 0 and result.validate_seconds > 0
    assert result.ratio == result.validate_seconds / result.baseline_seconds
    assert result.peak_memory_mb > 10  # the child's own peak, not zero
    assert "3,000 rows" in result.describe()
    assert result.annotated_rows == 3000 and result.annotated_seconds > 0
    assert result.annotated_ratio > 0
    assert "annotated.xlsx of 3,000 rows" in result.describe()
