"""Views of a CRM extract (`kayse-etl extract axiomatic`): a short text summary and its JSON.

Computes nothing new: every figure is already in the AxiomaticExtract (and in extract.json).
"""

from __future__ import annotations

from typing import Any

from pipeline.model import AxiomaticExtract

SHOWN_FINDINGS = 12


def extract_summary(result: AxiomaticExtract) -> dict[str, Any]:
    return {
        "out_dir": str(result.out_dir),
        "entity": {"id": result.entity_id, "name": result.entity_name},
        "extracted_at": result.extracted_at,
        "complete": result.complete,
        "files": result.tables,
        "requests": result.requests,
        "retries": result.retries,
        "waited_seconds": result.waited_seconds,
        "memberships_via": result.memberships_via,
        "findings": [
            {
                "code": f.code,
                "severity": f.severity,
                "resource": f.resource,
                "count": f.count,
                "message": f.message,
            }
            for f in result.findings
        ],
    }


def render_extract(result: AxiomaticExtract) -> str:
    lines = [f"Extracted the CRM of {result.entity_name!r} ({result.entity_id}) into {result.out_dir}"]
    for name, rows in result.tables.items():
        lines.append(f"  {name:<22} {rows:>9,} rows")
    lines.append(
        f"{result.requests:,} requests ({result.retries:,} retries), "
        f"{result.waited_seconds:,.0f}s waiting for the read quota or retries"
    )
    by_severity = {s: [f for f in result.findings if f.severity == s] for s in ("error", "warning", "info")}
    lines.append(
        f"{len(result.findings)} finding(s): {len(by_severity['error'])} error(s), "
        f"{len(by_severity['warning'])} warning(s), {len(by_severity['info'])} note(s) — see extract.json"
    )
    shown = [f for s in ("error", "warning") for f in by_severity[s]]
    for finding in shown[:SHOWN_FINDINGS]:
        lines.append(f"  {finding.severity}: {finding.message} [{finding.code}]")
    if len(shown) > SHOWN_FINDINGS:
        lines.append(f"  … and {len(shown) - SHOWN_FINDINGS} more in extract.json")
    if not result.complete:
        lines.append("Some tables may be incomplete (see the errors above): fix the cause and extract again.")
    return "\n".join(lines)
