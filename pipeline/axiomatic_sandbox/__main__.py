"""`python -m pipeline.axiomatic_sandbox`: serve the local Axiomatic in the foreground, for rehearsals."""

from __future__ import annotations

import argparse
import sys

from pipeline.axiomatic_sandbox.config import ENDPOINTS, AxiomaticConfig, AxiomaticSandboxError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.axiomatic_sandbox",
        description="A local Axiomatic CRM API (not the real one).",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=8766, help="0 = any free port")
    add("--seed", type=int, default=7)
    add("--contacts", type=int, default=300)
    add("--companies", type=int, default=40)
    add("--leads", type=int, default=400)
    add("--rate-limit", type=int, default=100, help="reads per window per key")
    add("--rate-window", type=float, default=60.0, help="seconds")
    add("--page-cap", type=int, default=100, help="the most records one page holds")
    add("--faults", default=None, help='e.g. "error=0.05,ratelimit=0.02,latency=0.1,seed=3"')
    add(
        "--envelope",
        action="append",
        default=[],
        metavar="ENDPOINT=SPEC",
        help=f"endpoints: {', '.join(ENDPOINTS)}",
    )
    add("--duplicate-across-pages", action="store_true")
    add("--repeat-page", type=int, default=0, metavar="N")
    add("--missing-id-every", type=int, default=0, metavar="K")
    add("--type-flip", default=None, metavar="RESOURCE.FIELD")
    add("--lead-count-skew", type=int, default=0)
    add("--quiet", "-q", action="store_true", help="no line per request")
    return parser


def main(argv: list[str] | None = None) -> int:
    from pipeline.axiomatic_sandbox.server import serve

    args = _parser().parse_args(argv)
    try:
        envelopes = dict(spec.split("=", 1) for spec in args.envelope)
    except ValueError:
        print("error: --envelope takes ENDPOINT=SPEC, e.g. --envelope contacts=data+total", file=sys.stderr)
        return 2
    config = AxiomaticConfig(
        host=args.host,
        port=args.port,
        seed=args.seed,
        contacts=args.contacts,
        companies=args.companies,
        leads=args.leads,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        page_cap=args.page_cap,
        faults=args.faults,
        envelopes=envelopes,
        duplicate_across_pages=args.duplicate_across_pages,
        repeat_page=args.repeat_page,
        missing_id_every=args.missing_id_every,
        type_flip=args.type_flip,
        lead_count_skew=args.lead_count_skew,
    )
    try:
        serve(config, announce=lambda line: print(line, flush=True), log_requests=not args.quiet)
    except AxiomaticSandboxError as error:
        print(f"error: {error}" + (f"\nhint: {error.hint}" if error.hint else ""), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
