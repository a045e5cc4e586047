"""Cross-checks between the tables an extract read: counts that disagree, links that point nowhere.

Why it exists: a CRM's own aggregates (a stage's `leadCount`) and links (a lead's `contactId`)
are the only way to notice what a listing did not serve or what was deleted. None of it stops
an extract: each becomes a finding, and the validate stage decides what loads.
"""

from __future__ import annotations

from typing import Any

from pipeline.model import CrmFinding, problem

EXAMPLES = 5


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def reconcile(
    stages: list[dict[str, Any]], contacts: list[dict[str, Any]], leads: list[dict[str, Any]]
) -> list[CrmFinding]:
    findings: list[CrmFinding] = []
    per_stage: dict[str, int] = {}
    for lead in leads:
        per_stage[_text(lead.get("stageId"))] = per_stage.get(_text(lead.get("stageId")), 0) + 1
    for stage in stages:
        stated = stage.get("leadCount")
        if stated is None or isinstance(stated, bool | dict | list):
            continue
        read = per_stage.get(_text(stage.get("id")), 0)
        if _text(stated) != str(read):
            findings.append(
                CrmFinding(
                    problem("stage-count-mismatch").code,
                    "pipeline_stages",
                    field=_text(stage.get("name")) or _text(stage.get("id")),
                    detail=f"leadCount {stated}, but {read} lead(s) of it were read",
                    examples=(_text(stage.get("id")),),
                )
            )
    contact_ids = {_text(c.get("id")) for c in contacts if c.get("id") not in (None, "")}
    stage_ids = {_text(s.get("id")) for s in stages if s.get("id") not in (None, "")}
    dangling = [
        lead
        for lead in leads
        if _text(lead.get("contactId")) and _text(lead.get("contactId")) not in contact_ids
    ]
    no_contact = [lead for lead in leads if not _text(lead.get("contactId"))]
    no_stage = [
        lead for lead in leads if _text(lead.get("stageId")) and _text(lead.get("stageId")) not in stage_ids
    ]
    for code, group in (
        (problem("lead-contact-missing").code, dangling),
        (problem("lead-without-contact").code, no_contact),
        (problem("lead-stage-missing").code, no_stage),
    ):
        if group:
            examples = tuple(_text(lead.get("id")) for lead in group if lead.get("id") is not None)[:EXAMPLES]
            findings.append(CrmFinding(code, "leads", count=len(group), examples=examples))
    return findings
