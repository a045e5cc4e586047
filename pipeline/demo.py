"""`make demo`: the whole job end to end on the sample data, against a local Kayse sandbox.

Starts the sandbox on a free local port, then runs the same commands a user would type —
validate, plan, load --campaign, load again (nothing is sent twice), runs — and then a migration
off a CRM: the local Axiomatic (started in this process) is extracted, the folder validated and
loaded with mappings/axiomatic.yaml, extracted and loaded again (no write). Stops both servers.
Needs no account and no network. Each command is printed before it runs.
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
CRM_MAPPING = ROOT / "mappings" / "axiomatic.yaml"


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


def bold(text: str) -> str:
    """Bold on a terminal; plain text in a log or a pipe, where an escape code is only noise."""
    if sys.stdout.isatty() and os.environ.get("TERM") != "dumb" and "NO_COLOR" not in os.environ:
        return f"\033[1m{text}\033[0m"
    return text


def step(title: str, args: list[str], env: dict[str, str], expect: set[int]) -> None:
    print(f"\n{bold('== ' + title)}\n$ kayse-etl {' '.join(args)}", flush=True)
    plain = ["--plain"] if args[0] in ("load", "extract") else []
    code = subprocess.call([sys.executable, "-m", "pipeline", *args, *plain], env=env)
    print(f"(exit code {code})", flush=True)
    if code not in expect:
        sys.exit(f"demo: `kayse-etl {args[0]}` exited {code}, expected {sorted(expect)}")


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(mode=0o700)  # reports and ledgers below hold personal data
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
        migrate(env)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    print("\n" + bold("Reports written:"))
    for line in reports_written(OUT):
        print(f"  {line}")
    print(f"Migration: the extract in {OUT}/crm, its reports in {OUT}/crm-validate and {OUT}/crm-load")
    print(f"Ledgers: {ledger}, {OUT / 'crm-ledger.sqlite'}. The sandboxes have stopped.")


def migrate(env: dict[str, str]) -> None:
    """A migration off a CRM: the local Axiomatic in this process, read by `extract axiomatic`.

    Its read limit is raised from the documented 100 a minute and its CRM is smaller than the
    default, so the demo stays under a minute; the tour in the README runs it as documented."""
    from pipeline.axiomatic_sandbox import AxiomaticConfig, start_in_thread

    crm = start_in_thread(AxiomaticConfig(port=0, contacts=150, leads=200, rate_limit=10_000))
    crm_env = {**env, "AXIOMATIC_API_KEY": crm.api_key}
    folder, crm_ledger = str(OUT / "crm"), str(OUT / "crm-ledger.sqlite")
    mapping = os.path.relpath(CRM_MAPPING)
    extract = ["extract", "axiomatic", "--base-url", crm.base_url, "--entity", crm.entity_id, "--out", folder]
    print(f"\nLocal Axiomatic CRM running at {crm.base_url} (demo key, entity {crm.entity_id})")
    try:
        step("6. migration: extract the CRM (read-only) into a folder", extract, crm_env, {0, 1})
        step(
            "7. validate the folder: contacts → clients, leads → cases linked to them",
            ["validate", folder, "--mapping", mapping, "--report-dir", str(OUT / "crm-validate")],
            crm_env,
            {0, 1},
        )
        step(
            "8. load the folder",
            [
                "load",
                folder,
                "--mapping",
                mapping,
                "--ledger",
                crm_ledger,
                "--report-dir",
                str(OUT / "crm-load"),
            ],
            crm_env,
            {0, 1},
        )
        step("9. extract again: the CRM has not changed", extract, crm_env, {0, 1})
        step(
            "10. load again: an unchanged CRM sends no write",
            ["load", folder, "--mapping", mapping, "--ledger", crm_ledger],
            crm_env,
            {0, 1},
        )
    finally:
        crm.stop()


def reports_written(root: Path) -> list[str]:
    """Every report folder under `root` with the files in it, as they are on disk."""
    return [
        f"{folder}/: {', '.join(sorted(p.name for p in folder.iterdir() if p.is_file()))}"
        for folder in sorted(p for p in root.iterdir() if p.is_dir())
    ]


if __name__ == "__main__":
    main()
