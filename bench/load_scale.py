"""A migration-sized rehearsal: load N generated leads into a local sandbox (no rate limit), then
rerun. Prints wall time, requests planned and sent, and the quota hours production would need.

    python -m bench.load_scale 100000

Not part of `make bench` (it takes minutes at 100,000 leads); the figures go in closing notes.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench.generate import write_generic_export
from pipeline import run
from pipeline.model import estimate_hours
from pipeline.sandbox.server import SandboxConfig, start_in_thread
from pipeline.settings import Connection

MAPPING = Path(__file__).resolve().parent.parent / "mappings" / "generic.yaml"
KEY = "bench-scale-key-0000"


def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "leads.csv"
        write_generic_export(source, rows, seed=5)
        sandbox = start_in_thread(SandboxConfig(port=0, api_keys=(KEY,), rate_limit=1_000_000))
        try:
            connection = Connection(sandbox.base_url, KEY)
            for attempt in ("first load", "rerun"):
                started = time.perf_counter()
                outcome = run.load(
                    [source],
                    MAPPING,
                    connection=connection,
                    ledger_path=Path(tmp) / "ledger.sqlite",
                    batch_size=500,
                    campaign=True,
                )
                assert outcome.result is not None
                print(
                    f"{attempt}: {rows:,} rows, {outcome.validation.clients.height:,} clients, "
                    f"{outcome.validation.cases.height:,} cases: {time.perf_counter() - started:.1f} s, "
                    f"{outcome.result.requests_sent:,} requests (planned {outcome.plan.total_requests:,}; "
                    f"~{estimate_hours(outcome.plan.total_requests):.0f} h of production quota at 500/hour; "
                    f"one call per record would be {outcome.validation.clients.height + 2 * outcome.validation.cases.height:,}), "
                    f"outcome {outcome.result.outcome}"
                )
        finally:
            sandbox.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
