"""Requests are the scarce resource: count what `load` sends for the sample data, against the
minimum for that data and against the one-call-per-record flow of the API guide.

Runs against the local sandbox (real HTTP), so the counts are the sandbox's request log, not
our own bookkeeping.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from pipeline import run
from pipeline.sandbox.server import SandboxConfig, start_in_thread
from pipeline.settings import Connection

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "sample_data" / "leads.csv"
MAPPING = ROOT / "mappings" / "generic.yaml"
KEY = "bench-key-0000"


def main() -> None:
    sandbox = start_in_thread(SandboxConfig(port=0, api_keys=(KEY,)))
    try:
        print(
            "\n== load: API requests for the sample data (sample_data/leads.csv, with --campaign, default flags)"
        )
        for bulk_max in (500, 150):  # what accounts accept, and an account capped lower
            sandbox.reset()
            sandbox.configure(bulk_max=bulk_max)
            with tempfile.TemporaryDirectory() as tmp:
                ledger = Path(tmp) / "ledger.sqlite"
                conn = Connection(sandbox.base_url, KEY)
                first, second = (
                    run.load([SOURCE], MAPPING, connection=conn, ledger_path=ledger, campaign=True)
                    for _ in range(2)  # the load, then the rerun that should send nothing
                )
            assert first.result is not None and second.result is not None
            logged = len([r for r in sandbox.request_log() if str(r.get("path", "")).startswith("/v1/")])
            clients = first.validation.clients.height
            cases = first.validation.cases.height
            lists = len(first.plan.case_lists)
            campaigns = len(first.plan.campaigns)
            # attach is folded into each new list's create; B is the largest batch the account takes
            minimum = math.ceil(clients / bulk_max) + math.ceil(cases / bulk_max) + lists + campaigns
            naive = clients + cases + cases + lists + campaigns  # create client, create case, attach
            sent = first.result.requests_sent
            print(
                f"account cap {bulk_max:>3}: {clients} clients, {cases} cases, {lists} lists, "
                f"{campaigns} campaigns -> sent {sent}, planned {first.plan.total_requests} "
                f"(re-planned after size refusals {first.result.planned_requests}), minimum {minimum} "
                f"(+{sent - minimum}); sandbox logged {logged} over both runs; "
                f"one-call-per-record {naive} (x{naive / sent:.1f} more than ours); "
                f"rerun sent {second.result.requests_sent}"
            )
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
