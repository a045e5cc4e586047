"""`python -m bench` (`make bench`): the validate benchmark, then the load and extract benchmarks.

Usage: python -m bench [--rows N]   (default 1,000,000 rows for the validate benchmark)
"""

from __future__ import annotations

import argparse

from bench import extract_bench, load_bench, validate_bench


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=validate_bench.DEFAULT_ROWS, help="rows to generate")
    args = parser.parse_args(argv)
    validate_bench.main(args.rows)
    load_bench.main()
    extract_bench.main()


if __name__ == "__main__":
    main()
