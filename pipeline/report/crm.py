"""Views of the CRM commands: the integrations, the outcome types, and a mapping file's difference
with Kayse, as text for a person or JSON for a machine. Computes nothing new."""

from __future__ import annotations

from typing import Any

from pipeline.model import CrmDiff, CrmMapping, CrmPushOutcome


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
