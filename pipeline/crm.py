"""The firm's CRM field mappings as a file kept in version control: pull, check, diff, push.

Why it works as it does: a mapping file is edited by hand and reviewed like code, so a push must
be predictable. The whole file is checked before any request (every problem listed at once),
the difference is shown against what Kayse holds right now (one GET), and only what changed is
sent, in one POST, and only with --yes. Kayse's API upserts by `kayse_field` and has no delete:
a mapping the file lacks stays in Kayse, and the diff says so.

Pure parsing and diffing here; the three calls go through the client passed in, and the pulled
file is written by `pipeline.report.crm`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.model import (
    CRM_DEFAULT_DIRECTION,
    CRM_DIRECTIONS,
    CrmDiff,
    CrmMapping,
    CrmPushOutcome,
    UserError,
)

# ---- the file -------------------------------------------------------------------------


def parse_mappings(text: str, source: str = "the file") -> list[CrmMapping]:
    """Check the whole document and return its mappings, or raise one UserError listing EVERY
    problem (not a list, an entry not a mapping, an empty field, an unknown direction, a
    kayse_field twice). A missing direction means the API's default, bidirectional."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UserError(
            f"{source} is not valid YAML{where}", hint="see `kayse-etl crm fields pull` for the shape"
        ) from None
    items = document.get("mappings") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise UserError(
            f"{source} must hold `mappings:` with a list of {{kayse_field, crm_field, direction}}",
            hint="see `kayse-etl crm fields pull` for the shape",
        )
    problems: list[str] = []
    result: list[CrmMapping] = []
    first_seen: dict[str, int] = {}
    for number, item in enumerate(items, start=1):
        where = f"mapping {number}"
        if not isinstance(item, dict):
            problems.append(f"{where}: is not a mapping of kayse_field, crm_field, direction")
            continue
        unknown = sorted(str(k) for k in item if k not in ("kayse_field", "crm_field", "direction"))
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(unknown)}")
        values: dict[str, str] = {}
        for name in ("kayse_field", "crm_field"):
            value = item.get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                problems.append(f"{where}: {name} is empty")
            elif not isinstance(value, str):
                problems.append(f"{where}: {name} must be text, not {value!r}")
            else:
                values[name] = value
        direction = item.get("direction", CRM_DEFAULT_DIRECTION)
        if direction not in CRM_DIRECTIONS:
            problems.append(f"{where}: direction {direction!r} is not one of {', '.join(CRM_DIRECTIONS)}")
        kayse_field = values.get("kayse_field")
        if kayse_field is not None:
            if kayse_field in first_seen:
                problems.append(
                    f"{where}: kayse_field {kayse_field!r} is already mapped by mapping {first_seen[kayse_field]}"
                )
            else:
                first_seen[kayse_field] = number
        if len(values) == 2 and direction in CRM_DIRECTIONS:
            result.append(CrmMapping(values["kayse_field"], values["crm_field"], str(direction)))
    if problems:
        listing = "; ".join(problems)
        raise UserError(
            f"{source} has {len(problems)} problem{'s' if len(problems) > 1 else ''}: {listing}",
            hint="nothing was sent; fix every line above and push again",
        )
    return result


def read_mappings(path: Path) -> list[CrmMapping]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text") from None
    return parse_mappings(text, str(path))


# ---- the difference --------------------------------------------------------------------


def from_api(items: list[dict[str, Any]]) -> list[CrmMapping]:
    return [
        CrmMapping(
            str(item.get("kayse_field")),
            str(item.get("crm_field")),
            str(item.get("direction") or CRM_DEFAULT_DIRECTION),
        )
        for item in items
        if isinstance(item, dict)
    ]


def diff(wanted: list[CrmMapping], held: list[CrmMapping]) -> CrmDiff:
    """The file (`wanted`) against Kayse (`held`), keyed by kayse_field, in the file's order."""
    by_field = {m.kayse_field: m for m in held}
    added, changed, unchanged = [], [], []
    for mapping in wanted:
        current = by_field.get(mapping.kayse_field)
        if current is None:
            added.append(mapping)
        elif current != mapping:
            changed.append((current, mapping))
        else:
            unchanged.append(mapping)
    in_file = {m.kayse_field for m in wanted}
    only_in_kayse = tuple(m for m in held if m.kayse_field not in in_file)
    return CrmDiff(tuple(added), tuple(changed), tuple(unchanged), only_in_kayse)


# ---- the calls ----------------------------------------------------------------------------


def integrations(client: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = client.crm.integrations()
    return result


def outcome_types(client: Any) -> list[dict[str, Any]]:
    """`[{"id", "label", "description"}]`; the reference wraps them in `outcome_types`."""
    body = client.crm.outcome_types()
    items = body.get("outcome_types") if isinstance(body, dict) else body
    return [item for item in items or [] if isinstance(item, dict)]


def pull(client: Any) -> list[dict[str, Any]]:
    """Kayse's mappings exactly as the API returns them (one GET)."""
    result: list[dict[str, Any]] = client.crm.field_mappings()
    return result


def push(client: Any, wanted: list[CrmMapping], *, yes: bool) -> CrmPushOutcome:
    """One GET for the difference; with `yes` and something to change, ONE POST carrying only
    the added and changed mappings. Nothing changed, or no `yes`: nothing is sent."""
    before = client.requests_sent
    the_diff = diff(wanted, from_api(client.crm.field_mappings()))
    if not yes or not the_diff.to_send:
        return CrmPushOutcome(the_diff, sent=False, requests_sent=client.requests_sent - before)
    answer = client.crm.upsert_field_mappings([m.as_api() for m in the_diff.to_send])
    updated = answer.get("updated") if isinstance(answer, dict) else None
    return CrmPushOutcome(
        the_diff,
        sent=True,
        requests_sent=client.requests_sent - before,
        updated=updated if isinstance(updated, int) else None,
    )
