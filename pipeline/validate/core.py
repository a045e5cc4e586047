"""The validate stage: mapped text in, what would be sent plus every reason a row was refused out.

A source row is the unit. Every field of every row is normalized at once (polars
expressions, phones via `phones.normalize_phone`); a row with any problem contributes nothing, and
each of its problems is reported, with the source column name the user knows and the value
as read. Valid rows become one client per contact (first valid row wins; disagreements are
warnings) and one case per case id (later duplicates are refused).

This stage must never touch the network and never raise on bad data: bad data is a result.
"""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.model import (
    CASE_CLIENT_KEY,
    CASE_FIELDS,
    CLIENT_FIELDS,
    CLIENT_KEY,
    PROBLEMS,
    REJECT_SCHEMA,
    SOURCE_FILE,
    SOURCE_ROW,
    FieldSpec,
    MappedFrames,
    MappingSpec,
    ValidationResult,
    empty_rejects,
    problem,
)
from pipeline.validate import normalize as n
from pipeline.validate.phones import normalize_phone
from pipeline.validate.schema import case_contract, check_output, client_contract, ordered_fields

_ROW = "__row"  # position of the row in the mapped frames: 0..rows-1 (extract-only problems after)
_ORDER = "__order"  # position of the check, so a row's problems are listed in mapping order


@dataclass(frozen=True)
class _Check:
    """One column of one entity to normalize, and how to report it."""

    entity: str  # "client" or "case"
    kayse_field: str
    label: str  # the source column name (what the user sees), else the Kayse field
    raw_column: str | None  # the column of `raw` holding the value as read
    spec: FieldSpec


_SHOWN = "__shown."  # raw_values key of a field whose value as read is not one source cell


def _field_check(entity: str, f: FieldSpec) -> _Check:
    """A field fed by a lookup or a fallback shows the text it got (the stage's name, the phone
    taken in place of an empty mobile), not the cell of its key column."""
    shown = f.lookup is not None or f.fallback is not None
    raw_column = f"{_SHOWN}{entity}.{f.kayse_field}" if shown else f.column
    return _Check(entity, f.kayse_field, f.label, raw_column, f)


def _checks(spec: MappingSpec) -> list[_Check]:
    key_spec = FieldSpec(kayse_field=CLIENT_KEY, column=None, type="string", required=True)
    checks = [_Check("client", CLIENT_KEY, spec.client.key_column, spec.client.key_column, key_spec)]
    checks += [_field_check("client", f) for f in ordered_fields(spec.client.fields, CLIENT_FIELDS)]
    checks.append(_Check("case", CLIENT_KEY, spec.case.key_column, spec.case.key_column, key_spec))
    checks += [_field_check("case", f) for f in ordered_fields(spec.case.fields, CASE_FIELDS)]
    if spec.case.client_key_column is not None:
        # The linked form: the case names its contact itself. Not `required`: an empty one is a
        # contact-missing problem, which says what it means for the case.
        link = spec.case.client_key_column
        link_spec = FieldSpec(kayse_field=CASE_CLIENT_KEY, column=link, type="string")
        checks.append(_Check("case", CASE_CLIENT_KEY, link, link, link_spec))
    return checks


def _raw_values(
    checks: list[_Check], raw: pl.DataFrame, frames: dict[str, pl.DataFrame]
) -> dict[str, pl.Series]:
    """The value as read of every check, for messages: the source cell, or the mapped text."""
    values: dict[str, pl.Series] = {}
    for check in checks:
        if check.raw_column is None or check.entity not in frames:
            continue
        if check.raw_column.startswith(_SHOWN):
            values[check.raw_column] = frames[check.entity].get_column(check.kayse_field).cast(pl.String)
        else:
            values[check.raw_column] = raw.get_column(check.raw_column).cast(pl.String)
    return values


def _normalizer(check: _Check, spec: MappingSpec, text: pl.Series, today: dt.date) -> n.Normalized:
    kind = check.spec.type
    if kind == "phone":
        return normalize_phone(text, spec.phone_region)
    if kind == "name":
        return n.normalize_name(text)
    if kind == "email":
        return n.normalize_email(text)
    if kind == "date":
        return n.normalize_date(text, spec.date_order)
    if kind == "birth_date":
        return n.normalize_birth_date(text, spec.date_order, today)
    if kind == "state":
        return n.normalize_state(text)
    if kind == "zip":
        return n.normalize_zip(text)
    if kind == "bool":
        return n.normalize_bool(text)
    if kind == "case_type":
        return n.normalize_choice(text, spec.case_types, "case-type")
    if kind == "case_status":
        return n.normalize_choice(text, spec.case_statuses, "case-status")
    return n.normalize_string(text)


def _message(check: _Check, reason: str, value: pl.Expr, spec: MappingSpec) -> pl.Expr:
    """The message of each bad cell, in the catalogue's words for the normalizer's reason."""
    code, variant = n.REASONS[reason]
    allowed = spec.case_types if reason == "case-type" else spec.case_statuses
    return problem(code).expression(
        variant=variant,
        field=check.label,
        value=value.fill_null(""),
        region=spec.phone_region,
        allowed=", ".join(allowed),
    )


def validate(mapped: MappedFrames, spec: MappingSpec, *, today: dt.date | None = None) -> ValidationResult:
    """Normalize every mapped row, refuse bad rows with all their problems, build clients and cases.

    `today` (default: the local date) is the limit for dates of birth in the future. A linked
    mapping (clients and cases from separate tables) is checked table by table: see
    `_validate_linked`.
    """
    if mapped.client_raw is not None:
        return _validate_linked(mapped, spec, today or dt.date.today())
    rows = mapped.raw.height
    if mapped.clients.height != rows or mapped.cases.height != rows:
        raise ValueError("mapped clients, cases and raw must have one row per source row")
    checks = _checks(spec)
    judged = _judge(
        {"client": mapped.clients, "case": mapped.cases},
        mapped.raw,
        checks,
        spec,
        mapped.problems,
        today or dt.date.today(),
    )
    work, located, raw_values = judged.work, judged.located, judged.raw_values
    rejected = judged.rejected
    duplicate_rejects = _duplicate_cases(work, checks, rejected, located, raw_values)
    rejected = rejected | _marked(rows, duplicate_rejects.get_column(_ROW))
    rejects = _located_rejects(pl.concat([judged.rejects, duplicate_rejects]), located, judged.orphans)

    # Clients and cases are copied out of `work` one column at a time, each normalized column
    # released as soon as it is copied: the full normalized frame is never held twice. The two
    # are independent, so cases are built and checked in a thread while clients are.
    columns = _columns(judged)
    del work, judged.work
    case_only = [f"v{i}" for i, c in enumerate(checks) if c.entity == "case"]
    case_columns = {name: columns.pop(name) for name in case_only} | columns
    with ThreadPoolExecutor(max_workers=2) as pool:
        cases_checked = pool.submit(_checked_cases, case_columns, ~rejected, checks, spec)
        del case_columns
        clients, warnings_found = _clients(columns, ~rejected, checks, raw_values, pool)
        del columns
        check_output(clients, client_contract(spec))
        cases, warnings = cases_checked.result(), warnings_found.result()

    return ValidationResult(
        sources=mapped.sources,
        mapping=spec,
        rows_read=rows + judged.orphans.height,
        clients=clients,
        cases=cases,
        rejects=rejects,
        rejected_rows=_rejected_rows(judged.raw, rejected, judged.orphans),
        warnings=warnings,
        source_rows=_with_orphans(mapped.raw, judged.orphans),
    )


@dataclass
class _Judged:
    """One table's rows judged: every check normalized, every cell and reader problem located."""

    raw: pl.DataFrame  # the rows as read, with _ROW
    located: pl.DataFrame  # _ROW, SOURCE_FILE, SOURCE_ROW: row i at position i
    work: pl.DataFrame  # _ROW and v{i} per check
    rejects: pl.DataFrame  # located: _ROW, field, value, code, message, _ORDER
    orphans: pl.DataFrame  # rows the reader named but left out of the frame
    rejected: pl.Series  # per row: has a problem
    raw_values: dict[str, pl.Series]


def _judge(
    frames: dict[str, pl.DataFrame],
    raw: pl.DataFrame,
    checks: list[_Check],
    spec: MappingSpec,
    problems: pl.DataFrame,
    today: dt.date,
) -> _Judged:
    raw = raw.with_row_index(_ROW).with_columns(pl.col(_ROW).cast(pl.Int64))
    located = raw.select(_ROW, SOURCE_FILE, pl.col(SOURCE_ROW).cast(pl.Int64))  # row i at position i
    raw_values = _raw_values(checks, raw, frames)
    work, field_rejects = _normalize_all(frames, raw.height, spec, checks, raw_values, today)
    extract_rejects, orphans = _extract_rejects(problems, located, raw.height)
    rejected = _marked(
        raw.height, pl.concat([field_rejects.get_column(_ROW), extract_rejects.get_column(_ROW)])
    )
    return _Judged(
        raw, located, work, pl.concat([extract_rejects, field_rejects]), orphans, rejected, raw_values
    )


def _marked(rows: int, positions: pl.Series) -> pl.Series:
    """A mask of `rows` rows, true at `positions` (those past the end, orphans, ignored)."""
    inside = positions.filter(positions < rows)
    return pl.repeat(False, rows, dtype=pl.Boolean, eager=True).scatter(inside, True)


def _located_rejects(rejects: pl.DataFrame, located: pl.DataFrame, orphans: pl.DataFrame) -> pl.DataFrame:
    """Located rejects (by _ROW) in row then mapping order, as REJECT_SCHEMA with file and row."""
    located_all = pl.concat([located, orphans])  # still row i at position i
    rejects = rejects.sort(_ROW, _ORDER, maintain_order=True)
    return (
        rejects.hstack(located_all.drop(_ROW).select(pl.all().gather(rejects.get_column(_ROW))))
        .select(list(REJECT_SCHEMA))
        .cast(REJECT_SCHEMA)  # type: ignore[arg-type]
    )


def _columns(judged: _Judged) -> dict[str, pl.Series]:
    columns = dict(zip(judged.work.columns, judged.work.get_columns(), strict=True))
    columns.update(zip(judged.located.columns[1:], judged.located.get_columns()[1:], strict=True))
    return columns


def _rejected_rows(raw: pl.DataFrame, rejected: pl.Series, orphans: pl.DataFrame) -> pl.DataFrame:
    rows = (
        pl.concat([raw.filter(rejected), orphans], how="diagonal_relaxed")
        if orphans.height
        else raw.filter(rejected)
    )
    return rows.sort(_ROW).drop(_ROW)


# ---- the linked form: clients and cases from separate tables ----------------------------


def _validate_linked(mapped: MappedFrames, spec: MappingSpec, today: dt.date) -> ValidationResult:
    """Clients from the client table, cases from the case table, each row judged in its own table.

    A contact row with a problem is refused (and so is every case linked to it, with
    `contact-rejected` naming the contact's row and why); a case whose contact key is empty or
    matches no contact row is refused with `contact-missing`. A contact with no case is still a
    client: a migration moves every person, and Kayse takes a client without a case.
    """
    assert mapped.client_raw is not None
    checks = _checks(spec)
    client_checks = [c for c in checks if c.entity == "client"]
    case_checks = [c for c in checks if c.entity == "case"]
    client_file = Path(mapped.sources[0].path).name  # the linked map stage lists the client table first
    on_client_side = pl.col(SOURCE_FILE) == client_file
    client_side = _judge(
        {"client": mapped.clients},
        mapped.client_raw,
        client_checks,
        spec,
        mapped.problems.filter(on_client_side),
        today,
    )
    case_side = _judge(
        {"case": mapped.cases}, mapped.raw, case_checks, spec, mapped.problems.filter(~on_client_side), today
    )

    client_rejects = _located_rejects(client_side.rejects, client_side.located, client_side.orphans)
    columns = _columns(client_side)
    del client_side.work
    contact_keys = columns[f"v{_client_key_index(client_checks)}"]  # every row's, rejected ones too
    with ThreadPoolExecutor(max_workers=1) as pool:
        clients, warnings_found = _clients(
            columns, ~client_side.rejected, client_checks, client_side.raw_values, pool
        )
        del columns
        check_output(clients, client_contract(spec))
        warnings = warnings_found.result()

    rejected = case_side.rejected
    duplicates = _duplicate_cases(
        case_side.work, case_checks, rejected, case_side.located, case_side.raw_values
    )
    links = _contact_links(
        case_side, case_checks, contact_keys, client_side, client_rejects, clients, client_file
    )
    rejected = rejected | _marked(
        case_side.raw.height, pl.concat([duplicates.get_column(_ROW), links.get_column(_ROW)])
    )
    case_rejects = _located_rejects(
        pl.concat([case_side.rejects, duplicates, links]), case_side.located, case_side.orphans
    )
    columns = _columns(case_side)
    del case_side.work
    cases = _cases(columns, ~rejected, case_checks)
    del columns
    check_output(cases, case_contract(spec))

    return ValidationResult(
        sources=mapped.sources,
        mapping=spec,
        rows_read=sum(side.raw.height + side.orphans.height for side in (client_side, case_side)),
        clients=clients,
        cases=cases,
        rejects=pl.concat([client_rejects, case_rejects]),
        rejected_rows=pl.concat(
            [
                _rejected_rows(client_side.raw, client_side.rejected, client_side.orphans),
                _rejected_rows(case_side.raw, rejected, case_side.orphans),
            ],
            how="diagonal_relaxed",
        ),
        warnings=warnings,
        # both tables' rows as read, each table's columns (the other's empty), in table order
        source_rows=pl.concat(
            [
                _with_orphans(mapped.client_raw, client_side.orphans),
                _with_orphans(mapped.raw, case_side.orphans),
            ],
            how="diagonal_relaxed",
        ),
    )


def _contact_links(
    case_side: _Judged,
    case_checks: list[_Check],
    contact_keys: pl.Series,
    client_side: _Judged,
    client_rejects: pl.DataFrame,
    clients: pl.DataFrame,
    client_file: str,
) -> pl.DataFrame:
    """A located reject for every case whose contact is not a client: none named, none found, or
    found only in rejected rows (then the first such row and its problems are named)."""
    link_index = next(i for i, c in enumerate(case_checks) if c.kayse_field == CASE_CLIENT_KEY)
    check = case_checks[link_index]
    contact_rows = (
        pl.DataFrame(
            [contact_keys.alias("__key"), client_side.located.get_column(SOURCE_ROW).alias("__contact_row")]
        )
        .filter(pl.col("__key").is_not_null())
        .unique("__key", keep="first", maintain_order=True)
    )
    reasons = (
        client_rejects.unique([SOURCE_ROW, "code"], maintain_order=True)
        .with_columns(
            pl.col("code")
            .replace_strict({c: p.title for c, p in PROBLEMS.items()}, default=pl.col("code"))
            .alias("__title")
        )
        .group_by(SOURCE_ROW, maintain_order=True)
        .agg(pl.col("__title").str.join("; ").alias("__reasons"))
        .rename({SOURCE_ROW: "__contact_row"})
    )
    links = (
        case_side.work.select(_ROW, pl.col(f"v{link_index}").alias("__key"))
        .with_columns(
            case_side.raw_values[check.raw_column].alias("__value")
            if check.raw_column
            else pl.lit(None, pl.String).alias("__value"),
            pl.col("__key")
            .is_in(clients.get_column(CLIENT_KEY).implode())
            .fill_null(False)
            .alias("__client"),
        )
        .filter(~pl.col("__client"))
        .join(contact_rows, on="__key", how="left", maintain_order="left")
        .join(reasons, on="__contact_row", how="left", maintain_order="left")
    )
    missing, rejected, none = problem("contact-missing"), problem("contact-rejected"), problem("no-contact")
    value = pl.col("__value").fill_null("")
    message = (
        pl.when(pl.col("__key").is_null())
        .then(none.expression(field=check.label, client_file=client_file))
        .when(pl.col("__contact_row").is_null())
        .then(missing.expression(field=check.label, value=value, client_file=client_file))
        .otherwise(
            rejected.expression(
                field=check.label,
                value=value,
                client_file=client_file,
                client_row=pl.col("__contact_row").cast(pl.String),
                reasons=pl.col("__reasons").fill_null("see its row in rejects.csv"),
            )
        )
    )
    code = (
        pl.when(pl.col("__key").is_null())
        .then(pl.lit(none.code))
        .when(pl.col("__contact_row").is_null())
        .then(pl.lit(missing.code))
        .otherwise(pl.lit(rejected.code))
    )
    return links.select(
        _ROW,
        field=pl.lit(check.label),
        value=pl.col("__value"),
        code=code,
        message=message,
        **{_ORDER: pl.lit(len(case_checks) + 1, dtype=pl.Int64)},
    )


def _with_orphans(raw: pl.DataFrame, orphans: pl.DataFrame) -> pl.DataFrame:
    """Every row read, the reader's left-out rows appended with empty cells. Appended without a
    copy of `raw` (a second chunk), so the result holds what the extract already held."""
    if orphans.height == 0:
        return raw
    filler = orphans.select(
        [
            pl.col(name).cast(dtype) if name in (SOURCE_FILE, SOURCE_ROW) else pl.lit(None, dtype).alias(name)
            for name, dtype in raw.schema.items()
        ]
    )
    return pl.concat([raw, filler], how="vertical", rechunk=False)


_COSTLIEST = ("email", "birth_date", "zip", "date", "phone")  # per row, on a typical export


def _cost_rank(check: _Check) -> int:
    kind = check.spec.type
    return _COSTLIEST.index(kind) if kind in _COSTLIEST else len(_COSTLIEST)


def _normalize_all(
    frames: dict[str, pl.DataFrame],
    rows: int,
    spec: MappingSpec,
    checks: list[_Check],
    raw_values: dict[str, pl.Series],
    today: dt.date,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """_ROW plus, per check i, the value to send (v{i}); and one reject per bad cell.

    Columns are independent and polars releases the GIL, so they are judged in threads. Each
    column's reasons are turned into rejects at once and dropped: only the (few) bad cells are
    kept, never a reason column per field beside the values.
    """
    texts = [frames[check.entity].get_column(check.kayse_field).cast(pl.String) for check in checks]

    def judge(i: int) -> tuple[pl.Series, list[pl.DataFrame]]:
        check = checks[i]
        normalized = _normalizer(check, spec, texts[i], today)
        bad = normalized.bad()
        if check.spec.required:
            # Every normalizer gives neither a value nor a reason exactly for an empty cell.
            bad = bad | normalized.value.is_null()
        return normalized.value.alias(f"v{i}"), _field_rejects(i, check, normalized, bad, raw_values, spec)

    # The costliest kinds first, so that no worker is left with a long one at the end.
    by_cost = sorted(range(len(checks)), key=lambda i: _cost_rank(checks[i]))
    with ThreadPoolExecutor(max_workers=min(len(checks), os.cpu_count() or 1)) as pool:
        judged = dict(zip(by_cost, pool.map(judge, by_cost), strict=True))
    results = [judged[i] for i in range(len(checks))]
    columns: list[pl.Series] = [pl.int_range(rows, dtype=pl.Int64, eager=True).alias(_ROW)]
    columns += [value for value, _ in results]
    rejects = pl.concat([_empty_located_rejects(), *(piece for _, pieces in results for piece in pieces)])
    return pl.DataFrame(columns), rejects


def _empty_located_rejects() -> pl.DataFrame:
    return pl.DataFrame(
        schema={_ROW: pl.Int64, "field": pl.String, "value": pl.String, "code": pl.String,
                "message": pl.String, _ORDER: pl.Int64}
    )  # fmt: skip


def _field_rejects(
    i: int,
    check: _Check,
    normalized: n.Normalized,
    bad_cells: pl.Series,
    raw_values: dict[str, pl.Series],
    spec: MappingSpec,
) -> list[pl.DataFrame]:
    """One reject per bad cell of check i: _ROW, field (source column), value as read, code, message, _ORDER.

    `bad_cells` marks the cells with a reason, and (for a required field) the empty ones, whose
    reason is "missing". Only the (few) bad positions are gathered: no frame of a million rows.
    """
    reason_col = f"r{i}"
    positions = bad_cells.arg_true()
    if positions.len() == 0:
        return []
    bad = pl.DataFrame(
        [
            positions.cast(pl.Int64).alias(_ROW),
            normalized.reasons_at(positions).cast(pl.String).fill_null("missing").alias(reason_col),
        ]
    )
    value = (
        raw_values[check.raw_column].gather(bad.get_column(_ROW))
        if check.raw_column is not None
        else pl.Series([None] * bad.height, dtype=pl.String)
    )
    bad = bad.with_columns(value.alias("value"))
    return [
        bad.filter(pl.col(reason_col) == reason_key).select(
            _ROW,
            field=pl.lit(check.label),
            value=pl.col("value"),
            code=pl.lit(problem(n.REASONS[reason_key][0]).code),
            message=_message(check, reason_key, pl.col("value"), spec),
            **{_ORDER: pl.lit(i, dtype=pl.Int64)},
        )
        for reason_key in bad.get_column(reason_col).unique().to_list()
    ]


def _extract_rejects(
    problems: pl.DataFrame, located: pl.DataFrame, rows: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The reader's problems (ragged rows) as rejects, and the rows they name that are not in the frame.

    Such "orphan" rows (the reader left them out) get positions after the frame's rows, so they
    can be located, counted as read and listed among the rejected rows like any other.
    """
    problems = problems.select(list(REJECT_SCHEMA)).cast(REJECT_SCHEMA)  # type: ignore[arg-type]
    if problems.height == 0:
        orphans = located.clear().select(_ROW, SOURCE_FILE, SOURCE_ROW)
        return _empty_located_rejects(), orphans
    problems = problems.join(located, on=[SOURCE_FILE, SOURCE_ROW], how="left", maintain_order="left")
    orphans = (
        problems.filter(pl.col(_ROW).is_null())
        .select(SOURCE_FILE, SOURCE_ROW)
        .unique(maintain_order=True)
        .select((pl.int_range(pl.len(), dtype=pl.Int64) + rows).alias(_ROW), SOURCE_FILE, SOURCE_ROW)
    )
    problems = problems.join(orphans, on=[SOURCE_FILE, SOURCE_ROW], how="left", suffix="_orphan")
    rejects = problems.select(
        pl.coalesce(_ROW, f"{_ROW}_orphan").alias(_ROW),
        "field",
        "value",
        "code",
        "message",
        **{_ORDER: pl.lit(-1, dtype=pl.Int64)},
    )
    return rejects, orphans


def _duplicate_cases(
    work: pl.DataFrame,
    checks: list[_Check],
    rejected: pl.Series,
    located: pl.DataFrame,
    raw_values: dict[str, pl.Series],
) -> pl.DataFrame:
    """Rows whose case id an earlier row without other problems already has: the first one wins."""
    index = next(i for i, c in enumerate(checks) if c.entity == "case" and c.kayse_field == CLIENT_KEY)
    check, case_key = checks[index], f"v{index}"
    keyed = (
        work.select(_ROW, case_key)
        .with_columns(rejected.alias("rejected"))
        .filter(_may_repeat(work.get_column(case_key)))  # usually few rows: the rest is cheap
    )
    first_seen = (
        keyed.filter(~pl.col("rejected") & pl.col(case_key).is_not_null())
        .group_by(case_key)
        .agg(pl.col(_ROW).min().alias("first_row"))
    )
    duplicates = keyed.join(first_seen, on=case_key, how="inner").filter(pl.col(_ROW) > pl.col("first_row"))
    first = located.select(pl.all().gather(duplicates.get_column("first_row")))
    duplicates = duplicates.with_columns(
        first.get_column(SOURCE_FILE).alias("first_file"),
        first.get_column(SOURCE_ROW).alias("first_source_row"),
        (
            raw_values[check.raw_column].gather(duplicates.get_column(_ROW))
            if check.raw_column is not None
            else pl.Series([None] * duplicates.height, dtype=pl.String)
        ).alias("value"),
    )
    return duplicates.select(
        _ROW,
        field=pl.lit(check.label),
        value=pl.col("value"),
        code=pl.lit(problem("duplicate-case-id").code),
        message=problem("duplicate-case-id").expression(
            field=check.label,
            value=pl.col(case_key),
            first_row=pl.col("first_source_row").cast(pl.String),
            first_file=pl.col("first_file"),
        ),
        **{_ORDER: pl.lit(len(checks), dtype=pl.Int64)},
    )


def _may_repeat(values: pl.Series) -> pl.Series:
    """Per row: its value may occur in another row. True for every row whose value does (and,
    rarely, for one whose hash another value shares; and for a null): what follows groups by
    value, exactly.

    In a column in order (see `_in_order`) a value repeats exactly when a neighbour has it.
    Otherwise equal values have equal hashes, so only rows whose hash repeats can repeat; those
    are found by sorting the hashes (32 bits of them: half the sorting), far cheaper than a hash
    table of a million distinct keys.
    """
    if _in_order(values):
        present = values.drop_nulls()
        repeats = _same_as_neighbour(present)
        if present.len() == values.len():
            return repeats
        return pl.repeat(True, values.len(), eager=True).scatter(values.is_not_null().arg_true(), repeats)
    hashes = (values.hash() & 0xFFFFFFFF).cast(pl.UInt32)
    ordered = hashes.sort(multithreaded=False)  # beside other work: one thread sorts as fast
    return hashes.is_in(ordered.filter(ordered == ordered.shift(1)).implode())


def _in_order(values: pl.Series) -> bool:
    """Whether the values, nulls aside, are sorted, so that equal ones are neighbours: exports are
    often in id order, and checking that costs one comparison a row."""
    return values.drop_nulls().is_sorted()


def _same_as_neighbour(values: pl.Series) -> pl.Series:
    """Per row: the row before or after it holds the same value."""
    as_before = (values == values.shift(1)).fill_null(False)
    return as_before | as_before.shift(-1, fill_value=False)


def _client_key_index(checks: list[_Check]) -> int:
    return next(i for i, c in enumerate(checks) if c.entity == "client" and c.kayse_field == CLIENT_KEY)


def _copy_out(
    columns: dict[str, pl.Series], wanted: list[tuple[str, str]], keep: set[str], take: pl.Series
) -> pl.DataFrame:
    """A frame of `wanted` (column, output name), each filtered by `take` from `columns`; columns
    not in `keep` are removed from `columns` once copied, so the normalized column is freed before
    the next one is copied."""
    copied: list[pl.Series] = []
    batch = max(2, os.cpu_count() or 1)  # a few columns at a time: polars copies them in parallel
    for start in range(0, len(wanted), batch):
        part = pl.DataFrame(
            [
                (columns[name] if name in keep else columns.pop(name)).alias(alias)
                for name, alias in wanted[start : start + batch]
            ]
        )
        copied += part.filter(take).get_columns()
        del part
    return pl.DataFrame(copied)


def _clients(
    columns: dict[str, pl.Series],
    valid: pl.Series,
    checks: list[_Check],
    raw_values: dict[str, pl.Series],
    pool: ThreadPoolExecutor,
) -> tuple[pl.DataFrame, Future[pl.DataFrame]]:
    """One client per contact key: the first valid row's values; disagreements become warnings.

    `columns` holds _ROW, v{i} and the source columns for every row (row i at position i); the
    client columns are taken out of it. `valid` says which rows are kept. Only the narrow
    (row, key) frame of valid rows is filtered, and only its repeated keys grouped; the client
    columns are filtered by a mask of the first rows (cheaper than gathering them). The warnings
    are found in `pool` while the clients are copied (and checked, by the caller).
    """
    key_index = _client_key_index(checks)
    keys = pl.DataFrame([columns[_ROW], columns[f"v{key_index}"].alias(CLIENT_KEY)]).filter(valid)
    key = keys.get_column(CLIENT_KEY)
    in_order = _in_order(key)
    # the rows of contacts with more rows than one
    shared = _same_as_neighbour(key) if in_order else _may_repeat(key)
    # `here`: a shared row's position among the shared rows; `there`: its contact's first one's
    here = pl.col("here")
    starts = pl.col(CLIENT_KEY) != pl.col(CLIENT_KEY).shift(1, fill_value="")  # keys are never empty
    there = pl.when(starts).then(here).forward_fill() if in_order else here.first().over(CLIENT_KEY)
    later = (
        keys.filter(shared)
        .with_columns(here=pl.int_range(pl.len(), dtype=pl.Int64))
        .with_columns(there=there)
    )
    is_first = later.get_column("here") == later.get_column("there")
    first_rows = pl.concat([keys.get_column(_ROW).filter(~shared), later.get_column(_ROW).filter(is_first)])
    client_columns = [(f"v{i}", c.kayse_field) for i, c in enumerate(checks) if c.entity == "client"]
    per_row = {alias: columns[name] for name, alias in client_columns} | {
        name: columns[name] for name in (_ROW, SOURCE_FILE, SOURCE_ROW)
    }
    warnings = pool.submit(
        _conflicting_contacts,
        per_row,
        later.get_column(_ROW),
        later.filter(~is_first).select("here", "there"),
        checks,
        raw_values,
    )
    del per_row
    clients = _copy_out(
        columns,
        [*client_columns, (SOURCE_FILE, SOURCE_FILE), (SOURCE_ROW, SOURCE_ROW)],
        {SOURCE_FILE, SOURCE_ROW},
        _marked(valid.len(), first_rows),  # a mask, not positions: filtering copies far faster
    )
    return clients, warnings


def _conflicting_contacts(
    per_row: dict[str, pl.Series],
    shared_rows: pl.Series,
    pairs: pl.DataFrame,
    checks: list[_Check],
    raw_values: dict[str, pl.Series],
) -> pl.DataFrame:
    """A warning per later valid row of a contact whose client field differs from the first row's.

    per_row: _ROW, the client fields and the source columns of every row (row i at position i);
    shared_rows: the rows of contacts with several valid rows, in order; pairs: each later one
    (`here`) and its contact's first (`there`), by position in shared_rows. The differing pairs
    of every field are gathered first, then made into warnings all at once.
    """
    key_label = next(c.label for c in checks if c.entity == "client" and c.kayse_field == CLIENT_KEY)
    conflicting = problem("conflicting-contact")
    found: list[tuple[int, _Check, pl.Series, pl.Series]] = []  # order, check, rows here, rows there
    if pairs.height:
        here, there = pairs.get_column("here"), pairs.get_column("there")
        shared = _marked(per_row[_ROW].len(), shared_rows)
        for order, check in enumerate(checks):
            if check.entity != "client" or check.kayse_field == CLIENT_KEY:
                continue
            # One field at a time, its shared rows in one chunk: gathering from the reader's many
            # is several times slower, and a copy of every field at once would cost memory.
            column = per_row[check.kayse_field].filter(shared).rechunk()
            differs = column.gather(here).ne_missing(column.gather(there))
            if differs.any():
                found.append(
                    (
                        order,
                        check,
                        shared_rows.gather(here.filter(differs)),
                        shared_rows.gather(there.filter(differs)),
                    )
                )
    if not found:
        return empty_rejects()

    def read(check: _Check, rows: pl.Series) -> pl.Series:
        if check.raw_column is None:
            return pl.Series([None] * rows.len(), dtype=pl.String)
        return raw_values[check.raw_column].gather(rows)

    rows_here = pl.concat([rows for _, _, rows, _ in found])
    rows_there = pl.concat([rows for _, _, _, rows in found])
    located = pl.DataFrame([per_row[name].alias(name) for name in (CLIENT_KEY, SOURCE_FILE, SOURCE_ROW)])
    frame = located.select(pl.all().gather(rows_here)).with_columns(
        pl.concat([read(check, rows) for _, check, rows, _ in found]).alias("__here"),
        pl.concat([read(check, rows) for _, check, _, rows in found]).alias("__there"),
        per_row[SOURCE_ROW].gather(rows_there).alias("__there_row"),
        per_row[SOURCE_FILE].gather(rows_there).alias("__there_file"),
        pl.concat([pl.repeat(check.label, rows.len(), eager=True) for _, check, rows, _ in found]).alias(
            "__label"
        ),
        pl.concat([pl.repeat(order, rows.len(), eager=True) for order, _, rows, _ in found]).alias(_ORDER),
        rows_here.alias(_ROW),
    )
    return (
        frame.sort(_ROW, _ORDER)
        .select(
            SOURCE_FILE,
            SOURCE_ROW,
            field=pl.col("__label"),
            value=pl.col("__here"),
            code=pl.lit(conflicting.code),
            message=conflicting.expression(
                key_field=key_label,
                key=pl.col(CLIENT_KEY),
                field=pl.col("__label"),
                here=_quoted(pl.col("__here")),
                there=_quoted(pl.col("__there")),
                first_row=pl.col("__there_row").cast(pl.String),
                first_file=pl.col("__there_file"),
            ),
        )
        .cast(REJECT_SCHEMA)  # type: ignore[arg-type]
    )


def _quoted(value: pl.Expr) -> pl.Expr:
    """'value' as read, or (empty) for a blank cell."""
    return (
        pl.when(n.trimmed(value).is_null())
        .then(pl.lit("(empty)"))
        .otherwise(pl.concat_str([pl.lit("'"), value, pl.lit("'")]))
    )


def _checked_cases(
    columns: dict[str, pl.Series], valid: pl.Series, checks: list[_Check], spec: MappingSpec
) -> pl.DataFrame:
    cases = _cases(columns, valid, checks)
    check_output(cases, case_contract(spec))
    return cases


def _cases(columns: dict[str, pl.Series], valid: pl.Series, checks: list[_Check]) -> pl.DataFrame:
    """The valid rows' case columns, taken out of `columns` (the contact key stays for clients).

    The contact key is the case's own (linked form) or its row's client key (flat form)."""
    link = next((i for i, c in enumerate(checks) if c.kayse_field == CASE_CLIENT_KEY), None)
    client_key = f"v{link if link is not None else _client_key_index(checks)}"
    wanted = [(f"v{i}", c.kayse_field) for i, c in enumerate(checks) if c.entity == "case" and i != link]
    wanted += [(client_key, CASE_CLIENT_KEY), (SOURCE_FILE, SOURCE_FILE), (SOURCE_ROW, SOURCE_ROW)]
    return _copy_out(columns, wanted, {client_key, SOURCE_FILE, SOURCE_ROW}, valid)
