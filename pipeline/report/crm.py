"""Views of the CRM commands, as text for a person or JSON for a machine, and the pulled mapping
file (YAML); computes nothing new.

The Kayse side: the integrations, the outcome types, and a mapping file's difference with Kayse.
The legacy side: a CRM extract (`kayse-etl extract axiomatic`), whose every figure is already in
the AxiomaticExtract (and in extract.json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.model import AxiomaticExtract, CrmDiff, CrmMapping, CrmPushOutcome
from pipeline.report.files import prepare_dir, write_private_text


def dump_mappings(mappings: list[dict[str, Any]]) -> str:
    """YAML in the API's own shape, `mappings: [{kayse_field, crm_field, direction}]`, in Kayse's
    order and with exactly its values, so pull → push is a no-op. Accented letters stay readable;
    a value PyYAML cannot write readably and read back the same (a stray control character such
    as NEL) makes the whole file use escapes instead."""
    document = {"mappings": mappings}
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)
    if yaml.safe_load(text) != document:
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=False, default_flow_style=False)
    return text


def write_mappings(path: Path, mappings: list[dict[str, Any]]) -> Path:
    """Write the pulled file 0600 (its folder 0700 if created), all-or-nothing: field names
    describe the firm's CRM, which is its business."""
    prepare_dir(path.parent)
    return write_private_text(path, dump_mappings(mappings))


def render_integrations(items: list[dict[str, Any]]) -> str:
    if not items:
        return "no CRM integrations in this Kayse account"
    lines = [f"{len(items)} CRM integration(s):"]
    for item in items:
        state = "enabled" if item.get("enabled") else "disabled"
        since = f", connected {item['connected_at']}" if item.get("connected_at") else ""
        lines.append(f"  {item.get('type')}: {state}{since}")
    return "\n".join(lines)


def render_outcome_types(items: list[dict[str, Any]]) -> str:
    if not items:
        return "no outcome types in this Kayse account"
    lines = [f"{len(items)} outcome type(s):"]
    for item in items:
        description = f" — {item['description']}" if item.get("description") else ""
        lines.append(f"  {item.get('id')}: {item.get('label')}{description}")
    return "\n".join(lines)


def _line(m: CrmMapping) -> str:
    return f"{m.kayse_field} → {m.crm_field} ({m.direction})"


def diff_summary(diff: CrmDiff) -> dict[str, Any]:
    return {
        "added": [m.as_api() for m in diff.added],
        "changed": [{"kayse": old.as_api(), "file": new.as_api()} for old, new in diff.changed],
        "unchanged": [m.as_api() for m in diff.unchanged],
        "only_in_kayse": [m.as_api() for m in diff.only_in_kayse],
    }


def push_summary(outcome: CrmPushOutcome) -> dict[str, Any]:
    return {
        **diff_summary(outcome.diff),
        "sent": outcome.sent,
        "to_send": len(outcome.diff.to_send),
        "updated": outcome.updated,
        "requests_sent": outcome.requests_sent,
    }


def render_push(outcome: CrmPushOutcome, *, yes: bool) -> str:
    diff = outcome.diff
    lines = [
        f"added: {len(diff.added)}, changed: {len(diff.changed)}, unchanged: {len(diff.unchanged)}, "
        f"only in Kayse: {len(diff.only_in_kayse)}"
    ]
    lines.extend(f"  + {_line(m)}" for m in diff.added)
    lines.extend(f"  ~ {_line(old)}  ⇒  {_line(new)}" for old, new in diff.changed)
    if diff.only_in_kayse:
        lines.append(
            "  in Kayse but not in the file (the API cannot delete mappings; remove them in the web app):"
        )
        lines.extend(f"    {_line(m)}" for m in diff.only_in_kayse)
    if not diff.to_send:
        lines.append("Kayse already holds the file's mappings: nothing to send.")
    elif outcome.sent:
        lines.append(f"sent {len(diff.to_send)} mapping(s) in one request (Kayse updated {outcome.updated}).")
    elif not yes:
        lines.append(f"nothing sent: add --yes to send these {len(diff.to_send)} mapping(s) in one request.")
    return "\n".join(lines)


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
