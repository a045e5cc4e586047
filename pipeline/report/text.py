"""Text for a person, for the operator's commands: metadata, uncertain, resolve and rollback.

Each function turns one `pipeline.run` result into the lines the CLI prints, and computes
nothing new, so a script that calls `pipeline.run` can print exactly what the CLI would.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.model import (
    Decision,
    MappingCheck,
    RollbackPlan,
    RollbackSummary,
    UncertainMessage,
    UncertainRow,
    ValidationResult,
)
from pipeline.report.notify import render_uncertain_messages


def render_rows_valid(validation: ValidationResult) -> str:
    """The one line `plan` and `load` start with: how many rows passed the checks."""
    rejected = f" ({validation.rows_rejected:,} rejected)" if validation.rows_rejected else ""
    return f"{validation.rows_valid:,} of {validation.rows_read:,} rows valid{rejected}"


def render_mapping_check(check: MappingCheck) -> str:
    """The account's case types and statuses, as the mapping's `allowed` section to paste in,
    then what the mapping allows that the account does not know."""
    lines = ["The account's case types and their statuses:"]
    for name, statuses in sorted(check.account_types.items()):
        lines.append(f"  {name}: {', '.join(statuses) or '(none)'}")
    lines.append("As the mapping's `allowed` section:")
    lines.append(f"  case_types: [{', '.join(sorted(check.account_types))}]")
    all_statuses = sorted({s for statuses in check.account_types.values() for s in statuses})
    lines.append(f"  case_statuses: [{', '.join(all_statuses)}]")
    if check.unknown_types:
        lines.append(
            "The mapping allows case types Kayse does not know (their cases would be refused): "
            + ", ".join(check.unknown_types)
        )
    if check.unknown_statuses:
        lines.append(
            "The mapping allows statuses Kayse does not know yet (Kayse creates them on first use): "
            + ", ".join(check.unknown_statuses)
        )
    if not check.unknown_types and not check.unknown_statuses:
        lines.append("The mapping's allowed values all exist in the account.")
    return "\n".join(lines)


def render_uncertain(rows: Sequence[UncertainRow], messages: Sequence[UncertainMessage] = ()) -> str:
    """The uncertain records and messages, and the two ways to settle each one."""
    if not rows and not messages:
        return "no uncertain records"
    lines: list[str] = []
    if rows:
        lines += [
            f"{len(rows)} uncertain record(s). Look each up in the Kayse web app, then either:",
            "  kayse-etl resolve KIND KEY --kayse-id ID   (it exists: record its id)",
            "  kayse-etl resolve KIND KEY --recreate      (it does not: the next load creates it)",
            "  or fill in the kayse_id column of `uncertain --csv FILE` (an id, or the word recreate)",
            "  and run `kayse-etl resolve --from-csv FILE`.",
        ]
        lines.extend(f"  {r.kind:<9} {r.source_key}  (run {r.run_id}, batch {r.batch_id})" for r in rows)
    lines += render_uncertain_messages(list(messages))
    return "\n".join(lines)


def render_settled(decisions: Sequence[Decision]) -> str:
    """One line per decision applied to the ledger."""
    return "\n".join(
        f"{d.kind} {d.key}: "
        + (f"recorded as Kayse id {d.kayse_id}" if d.kayse_id else "will be created by the next load")
        for d in decisions
    )


def render_unmatched(decisions: Sequence[Decision]) -> str:
    """One line per decision that matched no record of the ledger (nothing changed for it)."""
    return "\n".join(
        f"{d.kind} {d.key}: not in the ledger for this target (nothing changed)" for d in decisions
    )


def _dependents(per_run: dict[int, int]) -> str:
    return ", ".join(f"run {run}: {count}" for run, count in sorted(per_run.items()))


def render_rollback_plan(plan: RollbackPlan) -> str:
    """What a rollback is about to delete, with counts, shown before the operator is asked."""
    dependent = sum(plan.dependent_cases.values())
    own_cases = plan.to_delete.get("case", 0) - (dependent if plan.with_dependent_cases else 0)
    lines = [f"rollback of run {plan.run_id} will delete from Kayse:"]
    lines.append(f"  {own_cases} case(s) run {plan.run_id} created")
    if plan.with_dependent_cases and dependent:
        lines.append(
            f"  {dependent} case(s) of other runs linked to its clients ({_dependents(plan.dependent_cases)}),"
            " as --with-dependent-cases asks"
        )
    lines.append(f"  {plan.to_delete.get('client', 0)} client(s) run {plan.run_id} created")
    if plan.kept_clients:
        lines.append(
            f"  and keep {plan.kept_clients} of its client(s): cases of other runs are linked to them "
            f"({_dependents(plan.dependent_cases)}); --with-dependent-cases deletes those cases too"
        )
    for kind, count in plan.left.items():
        if count:
            lines.append(f"  ({count} {kind}(s) stay: the Kayse API cannot delete them)")
    return "\n".join(lines)


def render_rollback(summary: RollbackSummary) -> str:
    """What a rollback deleted, what it kept for the cases that need it, and what it had to
    leave for the web app."""
    lines = [f"rollback of run {summary.run_id}:"]
    for kind in ("case", "client"):
        lines.append(
            f"  {kind}s deleted: {summary.deleted.get(kind, 0)}, not deleted: {summary.failed.get(kind, 0)}"
        )
    dependent = sum(summary.dependent_cases.values())
    if summary.dependents_deleted:
        lines.append(
            f"  of the cases deleted, {dependent} belonged to other runs and were linked to its clients "
            f"({_dependents(summary.dependent_cases)})"
        )
    elif summary.kept_clients:
        lines.append(
            f"  {summary.kept_clients} client(s) kept: {dependent} case(s) of other runs need them "
            f"({_dependents(summary.dependent_cases)}); rerun with --with-dependent-cases to delete those too"
        )
    for kind, count in summary.left.items():
        if count:
            lines.append(
                f"  {count} {kind}(s) left in place: the Kayse API cannot delete them; remove them in the web app"
            )
    return "\n".join(lines)
