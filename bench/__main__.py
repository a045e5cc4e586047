"""`python -m bench` (`make bench`): the validate benchmark (CSV and workbook), then the load and
extract benchmarks.

Usage: python -m bench [--rows N] [--xlsx-rows N] [--rounds N] [--skip-load]
(defaults: 1,000,000 CSV rows, 100,000 workbook rows, 3 alternated rounds; 0 rows skips that input;
--skip-load runs only the validate benchmark)
"""

from __future__ import annotations

import argparse

from bench import validate_bench


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=validate_bench.DEFAULT_ROWS, help="CSV rows to generate")
    parser.add_argument(
        "--xlsx-rows", type=int, default=validate_bench.DEFAULT_XLSX_ROWS, help="workbook rows to generate"
    )
    parser.add_argument(
        "--rounds", type=int, default=validate_bench.DEFAULT_ROUNDS, help="alternated runs of each side"
    )
    parser.add_argument("--skip-load", action="store_true", help="only the validate benchmark")
    args = parser.parse_args(argv)
    validate_bench.main(args.rows, args.xlsx_rows, args.rounds)
    if not args.skip_load:
        from bench import extract_bench, load_bench

        load_bench.main()
        extract_bench.main()


if __name__ == "__main__":
    main()
