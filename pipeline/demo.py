"""`make demo`: the whole job end to end on the sample data, against a local Kayse sandbox.

Starts the sandbox on a free local port, then runs the same commands a user would type —
validate, plan, load --campaign, load again (nothing is sent twice), runs — and stops the
sandbox. Needs no account and no network. Each command is printed before it runs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from pipeline.sandbox import DEMO_KEY

ROOT = Path(__file__).resolve().parent.parent
OUT = Path("demo-output")
SOURCE = ROOT / "sample_data" / "leads.csv"
MAPPING = ROOT / "mappings" / "generic.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sandbox(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "sandbox", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1)
            return process
        except requests.ConnectionError:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    process.kill()
    sys.exit("demo: the sandbox did not start")


def step(title: str, args: list[str], env: dict[str, str], expect: set[int]) -> None:
    print(f"\n\033[1m== {title}\033[0m\n$ kayse-etl {' '.join(args)}", flush=True)
    code = subprocess.call(
        [sys.executable, "-m", "pipeline", *args, *(["--plain"] if args[0] == "load" else [])], env=env
    )
    print(f"(exit code {code})", flush=True)
    if code not in expect:
        sys.exit(f"demo: `kayse-etl {args[0]}` exited {code}, expected {sorted(expect)}")


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()
    port = free_port()
    sandbox = start_sandbox(port)
    env = {**os.environ, "KAYSE_API_KEY": DEMO_KEY, "KAYSE_BASE_URL": f"http://127.0.0.1:{port}/v1"}
    source, mapping = os.path.relpath(SOURCE), os.path.relpath(MAPPING)
    ledger = str(OUT / "ledger.sqlite")
    common = [source, "--mapping", mapping]
    print(f"Kayse sandbox running at http://127.0.0.1:{port}/v1 (demo key {DEMO_KEY!r})")
    try:
        # 1 = some sample rows are rejected on purpose; the report says which and why.
        step(
            "1. validate: no network, what would load and what is wrong",
            ["validate", *common, "--report-dir", str(OUT / "validate")],
            env,
            {0, 1},
        )
        step(
            "2. plan: what a load would send, and how many requests",
            ["plan", *common, "--ledger", ledger, "--campaign"],
            env,
            {0, 1},
        )
        step(
            "3. load with a campaign",
            ["load", *common, "--ledger", ledger, "--campaign", "--report-dir", str(OUT / "load")],
            env,
            {0, 1},
        )
        step(
            "4. load again: nothing is sent twice",
            ["load", *common, "--ledger", ledger, "--campaign", "--report-dir", str(OUT / "rerun")],
            env,
            {0, 1},
        )
        step("5. the run history", ["runs", "--ledger", ledger], env, {0})
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    print(
        f"\nReports: {OUT}/validate (rejects.csv, annotated.xlsx, report.html, clients.csv, cases.csv, summary.json), {OUT}/load (load.json, failed.csv, success.csv, report.html), {OUT}/rerun"
    )
    print(f"Ledger: {ledger}. The sandbox has stopped.")


if __name__ == "__main__":
    main()
