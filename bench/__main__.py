"""`python -m bench` (`make bench`): the validate benchmark, then the load and extract benchmarks if present.

Usage: python -m bench [--rows N]   (default 1,000,000 rows for the validate benchmark)
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from bench import validate_bench


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=validate_bench.DEFAULT_ROWS, help="rows to generate")
    args = parser.parse_args(argv)
    validate_bench.main(args.rows)
    if (Path(__file__).parent / "load_bench.py").exists():
        importlib.import_module("bench.load_bench").main()
    if (Path(__file__).parent / "extract_bench.py").exists():
        importlib.import_module("bench.extract_bench").main()


if __name__ == "__main__":
    main()
