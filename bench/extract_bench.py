"""Requests are the scarce resource of an extract too (100 reads/minute in Axiomatic's docs):
count what `extract axiomatic` sends, endpoint by endpoint, against the minimum for the data
served — records ÷ the page size served for each list, one list per parent for the per-record
lists of the way chosen, plus the preflight.

Runs against the local Axiomatic (real HTTP): the counts are its request log, not our own
bookkeeping. Usage: python -m bench.extract_bench [--leads N]   (default 400 leads)
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from collections import Counter
from pathlib import Path

from pipeline.axiomatic_sandbox import AxiomaticConfig, start_in_thread
from pipeline.extract.axiomatic import extract

DEFAULT_LEADS = 400
READS_PER_MINUTE = 100


def _endpoint_of(path: str) -> str:
    parts = path.strip("/").split("/")  # api, crm, resource[, id, sub]
    if parts[:2] == ["api", "entities"]:
        return "preflight"
    if len(parts) == 5:
        return {
            "contacts": "company_contacts",
            "company-memberships": "memberships",
            "timeline": "timelines",
        }[parts[4]]
    return parts[2].replace("-", "_")


def main(leads: int = DEFAULT_LEADS) -> None:
    contacts, companies = leads * 3 // 4, max(leads // 10, 1)
    server = start_in_thread(
        AxiomaticConfig(port=0, seed=7, contacts=contacts, companies=companies, leads=leads, rate_limit=10**6)
    )
    try:
        print(
            f"\n== extract axiomatic: requests against the minimum ({contacts:,} contacts, {companies:,} companies, {leads:,} leads)"
        )
        for timelines in (False, True):
            server.reset()
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "crm"
                extract(server.base_url, server.api_key, server.entity_id, out, timelines=timelines)
                report = json.loads((out / "extract.json").read_text(encoding="utf-8"))
            sent = Counter(_endpoint_of(entry["path"]) for entry in server.request_log())
            print(
                f"-- {'with' if timelines else 'without'} --timelines (memberships via {report['memberships']['via']})"
            )
            print(f"   {'endpoint':<18}{'records':>9}{'page size':>11}{'minimum':>9}{'sent':>7}")
            total_min, total_sent = 1, sent["preflight"]
            print(f"   {'preflight':<18}{'':>9}{'':>11}{1:>9}{sent['preflight']:>7}")
            for name, endpoint in report["endpoints"].items():
                per_parent = "{id}" in endpoint["path"]
                served = endpoint["page_size_served"] or 1
                minimum = endpoint["pages"] if per_parent else max(1, math.ceil(endpoint["records"] / served))
                total_min += minimum
                total_sent += sent[name]
                size = "per parent" if per_parent else str(served)
                print(f"   {name:<18}{endpoint['records']:>9,}{size:>11}{minimum:>9,}{sent[name]:>7,}")
            per_contact = report["files"]["contacts.csv"]
            print(
                f"   total: {total_sent:,} requests sent for a minimum of {total_min:,} "
                f"(ratio {total_sent / total_min:.3f}); at {READS_PER_MINUTE} reads/minute: "
                f"{total_sent / READS_PER_MINUTE:,.1f} minutes"
            )
            if report["memberships"]["via"] == "companies":
                chosen = sent["company_contacts"] + sent["memberships"]
                print(
                    f"   memberships: {chosen:,} lists via the companies, against {per_contact:,} with one per contact"
                )
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.extract_bench", description=__doc__)
    parser.add_argument("--leads", type=int, default=DEFAULT_LEADS, help="leads in the local Axiomatic")
    main(parser.parse_args().leads)
