"""Vectorized normalizers: one function per field type, giving the value to send and why a cell is bad.

Each normalizer takes the mapped text column (a Series) and returns a `Normalized`: the value
to send (null when the cell is empty or bad) and a `reason` (null when the cell is fine, else a
key of `REASONS`). They work on whole columns at once, nothing here loops over rows in Python;
the costlier ones with few distinct values (dates, states, choices) work on those only,
in stages, because polars does not share a sub-expression used twice in one expression.

Nothing here may guess: a value that cannot be read with certainty (a two-digit year, an
8-digit ZIP) is rejected with a reason, never silently repaired. Nothing here touches the
network. Phones live in `phones.py` because they need phonenumbers' metadata.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import polars as pl

DateOrder = Literal["MDY", "DMY", "YMD"]


@dataclass(frozen=True)
class Normalized:
    value: pl.Series  # what would be sent; null when the cell is empty or bad
    reasons: pl.Series  # null when fine, else a key of REASONS: per row, or per distinct value
    positions: pl.Series | None = None  # with distinct values: each row's position among them

    @property
    def reason(self) -> pl.Series:
        """Per row: null when fine, else a key of REASONS."""
        return self.reasons if self.positions is None else self.reasons.gather(self.positions)

    def bad(self) -> pl.Series:
        """Per row: has a reason (a mask is cheaper to gather than the reasons themselves)."""
        has_reason = self.reasons.is_not_null()
        return has_reason if self.positions is None else has_reason.gather(self.positions)

    def reasons_at(self, rows: pl.Series) -> pl.Series:
        """The reasons of the rows at `rows` (positions)."""
        return self.reasons.gather(rows if self.positions is None else self.positions.gather(rows))


def _run(values: pl.Series, *stages: dict[str, pl.Expr], distinct: bool = False) -> Normalized:
    """Evaluate stages of named expressions over column "text"; the last must give value, reason.

    With `distinct`, they run once per distinct value and the values are given back to the rows.
    """
    text = values.cast(pl.String).rename("text")
    positions, frame = distinct_values(text) if distinct else (None, text.to_frame())
    for stage in stages:
        frame = frame.with_columns(**stage)
    value, reason = frame.get_column("value"), frame.get_column("reason")
    if positions is not None:
        value = per_row(text, frame.get_column("text"), value, positions)
    elif value.dtype == pl.String and value.equals(text, check_dtypes=True):
        # Nothing changed (an already-clean column): hand on the input itself, which shares
        # the source's memory, rather than a second copy of the whole column.
        value = text
    return Normalized(value.alias(values.name), reason, positions)


def distinct_values(text: pl.Series) -> tuple[pl.Series, pl.DataFrame]:
    """Each row's position in a frame of the distinct values (column "text", null last).

    One hashing pass (a cast to a categorical of the column's own), where `unique()` and a
    join back would hash every row twice; the categories are freed with the result.
    """
    categories = pl.Categories.random()
    categorical = text.cast(pl.Categorical(categories))  # holds the categories: read them first
    distinct = categories.to_series().extend_constant(None, 1).rename("text")
    return categorical.to_physical().fill_null(distinct.len() - 1), distinct.to_frame()


_MOST_CHANGED = 0.2
"""Past this share of changed rows, writing them into the column costs more than gathering all."""


def per_row(text: pl.Series, distinct: pl.Series, value: pl.Series, positions: pl.Series) -> pl.Series:
    """Each row's value, given the value of each `distinct` text and each row's position there.

    Gathering a million strings costs more than the rest of a normalizer, and most cells are
    usually sent as written: those rows keep the cell itself (sharing the source's memory), the
    emptied ones become null, and only the changed ones are written.
    """
    if value.dtype != pl.String:
        return value.gather(positions)
    emptied = value.is_null() & distinct.is_not_null()
    changed = (value != distinct).fill_null(False)
    changed_rows = changed.gather(positions) if changed.any() else None
    if changed_rows is not None and changed_rows.sum() > _MOST_CHANGED * text.len():
        return value.gather(positions)
    result = text
    if changed_rows is not None:
        result = text.clone().scatter(changed_rows.arg_true(), value.gather(positions.filter(changed_rows)))
    if emptied.any():
        result = pl.select(pl.when(emptied.gather(positions)).then(None).otherwise(result)).to_series()
    return result


REASONS: dict[str, tuple[str, str | None]] = {
    # a normalizer's reason: (its code in pipeline.model.PROBLEMS, which of that problem's messages)
    "missing": ("missing-required", None),
    "phone": ("invalid-phone", None),
    "date": ("invalid-date", None),
    "date-dmy": ("invalid-date", "day-first"),
    "date-ymd": ("invalid-date", "year-first"),
    "date-two-digit-year": ("invalid-date", "two-digit-year"),
    "date-impossible": ("invalid-date", "impossible"),
    "dob-future": ("date-of-birth-in-future", None),
    "dob-too-old": ("date-of-birth-too-old", None),
    "email": ("invalid-email", None),
    "state": ("invalid-state", None),
    "zip": ("invalid-zip", None),
    "bool": ("invalid-boolean", None),
    "case-type": ("unknown-case-type", None),
    "case-status": ("unknown-case-status", None),
}
"""The words of every problem live in the catalogue (pipeline.model.PROBLEMS), not here."""


def trimmed(text: pl.Expr) -> pl.Expr:
    """Whitespace stripped; empty becomes null."""
    return text.cast(pl.String).str.strip_chars().replace("", None)


_T = pl.col("text")
_V = pl.col("value")


def _reason_if(condition: pl.Expr, reason: str) -> pl.Expr:
    return pl.when(condition).then(pl.lit(reason)).otherwise(None)


def _fine() -> pl.Expr:
    return pl.lit(None, dtype=pl.String)


def normalize_string(values: pl.Series) -> Normalized:
    """Trimmed; empty becomes null. A column with nothing to trim is handed on as it is."""
    text = values.cast(pl.String)
    stripped = text.str.strip_chars()
    lengths = stripped.str.len_bytes()
    # Stripping only removes characters: equal byte lengths mean an unchanged cell.
    if lengths.equals(text.str.len_bytes()) and not lengths.eq(0).any():
        value = text
    else:
        value = pl.select(pl.when(lengths == 0).then(None).otherwise(stripped)).to_series()
    reason = pl.repeat(None, text.len(), dtype=pl.String, eager=True).alias("reason")
    return Normalized(value.alias(values.name), reason)


def normalize_name(values: pl.Series) -> Normalized:
    """Trim, collapse inner whitespace runs to one space; letters and accents kept exactly."""
    # Names repeat a lot (a few thousand first names cover most people): judged once each.
    return _run(values, {"value": trimmed(_T).str.replace_all(r"\s+", " "), "reason": _fine()}, distinct=True)


EMAIL_PATTERN = r"^[^@\s,]+@[^@\s.,]+(?:\.[^@\s.,]+)+$"
"""One @, a non-empty local part, a domain with a dot and no empty labels, no spaces, no commas
(an unquoted comma is not allowed in an address; it usually joins two addresses in one cell)."""


def normalize_email(values: pl.Series) -> Normalized:
    bad = _V.is_not_null() & ~_V.str.contains(EMAIL_PATTERN)
    return _run(
        values,
        {"value": trimmed(_T).str.to_lowercase()},
        {"bad": bad},
        {"value": pl.when("bad").then(None).otherwise(_V), "reason": _reason_if(pl.col("bad"), "email")},
    )


# ---- dates ---------------------------------------------------------------------------

_TIME = r"(?:[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
_YEAR_FIRST = rf"^([0-9]{{4}})([-/.])([0-9]{{1,2}})([-/.])([0-9]{{1,2}}){_TIME}$"
_YEAR_LAST = rf"^([0-9]{{1,2}})([-/.])([0-9]{{1,2}})([-/.])([0-9]{{4}}){_TIME}$"
_SHORT_YEAR = r"^[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{1,2}$"


def _iso_from_parts(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    text = pl.concat_str([year, pl.lit("-"), month.str.zfill(2), pl.lit("-"), day.str.zfill(2)])
    return text.str.to_date("%Y-%m-%d", strict=False)


def _date_stages(order: DateOrder) -> list[dict[str, pl.Expr]]:
    """Stages giving "parsed" (pl.Date) and "reason" from column "text".

    The year first is always year-month-day. With the year last, `order` says whether the
    first number is the month (MDY) or the day (DMY); YMD files must write the year first.
    Both separators must be the same character: - / or .
    """
    unreadable = {"MDY": "date", "DMY": "date-dmy", "YMD": "date-ymd"}[order]
    f, last = pl.col("first").struct.field, pl.col("last").struct.field
    month, day = (last("1"), last("3")) if order == "MDY" else (last("3"), last("1"))
    year_last = last("1").is_not_null() & (last("2") == last("4")) if order != "YMD" else pl.lit(False)

    def chosen(in_year_first: pl.Expr, in_year_last: pl.Expr) -> pl.Expr:
        return pl.when("year_first").then(in_year_first).when("year_last").then(in_year_last)

    return [
        {"trimmed": trimmed(_T)},
        {
            "first": pl.col("trimmed").str.extract_groups(_YEAR_FIRST),
            "last": pl.col("trimmed").str.extract_groups(_YEAR_LAST),
        },
        {"year_first": f("1").is_not_null() & (f("2") == f("4")), "year_last": year_last},
        # one date parsed per cell, from the year, month and day of whichever form it has
        {"parsed": _iso_from_parts(chosen(f("1"), last("5")), chosen(f("3"), month), chosen(f("5"), day))},
        {
            "reason": pl.when(pl.col("trimmed").is_null())
            .then(None)
            .when(pl.col("year_first") | pl.col("year_last"))
            .then(pl.when(pl.col("parsed").is_null()).then(pl.lit("date-impossible")).otherwise(None))
            .when(pl.col("trimmed").str.contains(_SHORT_YEAR))
            .then(pl.lit("date-two-digit-year"))
            .otherwise(pl.lit(unreadable))
        },
    ]


def normalize_date(values: pl.Series, order: DateOrder) -> Normalized:
    """ISO dates and datetimes (the date part), and M/D/YYYY-style dates read in `order`."""
    return _run(
        values, *_date_stages(order), {"value": pl.col("parsed").dt.to_string("%Y-%m-%d")}, distinct=True
    )


EARLIEST_BIRTH = dt.date(1900, 1, 1)


def normalize_birth_date(values: pl.Series, order: DateOrder, today: dt.date) -> Normalized:
    """A date (as above) that is neither after `today` nor before 1900."""
    reason = (
        pl.when(pl.col("reason").is_not_null())
        .then(pl.col("reason"))
        .when(pl.col("parsed") > pl.lit(today))
        .then(pl.lit("dob-future"))
        .when(pl.col("parsed") < pl.lit(EARLIEST_BIRTH))
        .then(pl.lit("dob-too-old"))
        .otherwise(None)
    )
    return _run(
        values,
        *_date_stages(order),
        {"reason": reason},
        {"value": pl.when(pl.col("reason").is_null()).then(pl.col("parsed").dt.to_string("%Y-%m-%d"))},
        distinct=True,
    )


# ---- US states -----------------------------------------------------------------------

STATES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa",
    "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland",
    "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi",
    "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire",
    "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York", "NC": "North Carolina",
    "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee",
    "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "DC": "District of Columbia", "PR": "Puerto Rico", "GU": "Guam", "VI": "U.S. Virgin Islands",
    "AS": "American Samoa", "MP": "Northern Mariana Islands",
    "AA": "Armed Forces Americas", "AE": "Armed Forces Europe", "AP": "Armed Forces Pacific",
}  # fmt: skip
"""USPS codes accepted: 50 states, DC, 5 inhabited territories, and the 3 military (APO/FPO) codes."""

_STATE_ALIASES = {
    "washington dc": "DC", "washington d c": "DC", "d c": "DC", "dist of columbia": "DC",
    "virgin islands": "VI", "us virgin islands": "VI", "u s virgin islands": "VI",
    "n mariana islands": "MP", "northern marianas": "MP",
}  # fmt: skip


def _state_key(text: pl.Expr) -> pl.Expr:
    """Lowercase, dots to spaces, whitespace runs to one space: 'N.Y.' → 'n y', 'D.C.' → 'd c'."""
    return text.str.to_lowercase().str.replace_all(r"\.", " ").str.replace_all(r"\s+", " ").str.strip_chars()


def _state_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    for code, name in STATES.items():
        lookup[code.lower()] = code
        lookup[" ".join(code.lower())] = code  # "n y" from "N.Y."
        lookup[name.lower().replace(".", " ").replace("  ", " ").strip()] = code
        lookup[" ".join(name.lower().replace(".", " ").split())] = code
    lookup.update(_STATE_ALIASES)
    return lookup


_STATE_LOOKUP = _state_lookup()


def normalize_state(values: pl.Series) -> Normalized:
    """State names or codes in any case (dots ignored) → the two-letter USPS code."""
    keys = list(_STATE_LOOKUP)
    code = _state_key(pl.col("trimmed")).replace_strict(
        keys, [_STATE_LOOKUP[k] for k in keys], default=None, return_dtype=pl.String
    )
    return _run(
        values,
        {"trimmed": trimmed(_T)},
        {"value": code},
        {"reason": _reason_if(pl.col("trimmed").is_not_null() & _V.is_null(), "state")},
        distinct=True,
    )


# ---- ZIP codes -----------------------------------------------------------------------

ZIP_PATTERN = r"^[0-9]{5}(?:-[0-9]{4})?$"


def normalize_zip(values: pl.Series) -> Normalized:
    """12345 and 12345-6789 as they are; 123456789 → 12345-6789; 3–4 digits get leading zeros back.

    A trailing '.0' (a ZIP stored as a number in a spreadsheet) is dropped first, and a space
    between the two parts of a ZIP+4 is read as the dash.
    """
    z = pl.col("z")
    fixed = (
        pl.when(z.str.contains(ZIP_PATTERN))
        .then(z)
        .when(z.str.contains(r"^[0-9]{9}$"))
        .then(pl.concat_str([z.str.slice(0, 5), pl.lit("-"), z.str.slice(5)]))
        .when(z.str.contains(r"^[0-9]{3,4}$"))
        .then(z.str.zfill(5))
        .otherwise(None)
    )
    return _run(
        values,
        {
            "z": trimmed(_T)
            .str.replace(r"^([0-9]{3,9})\.0$", "$1")
            .str.replace(r"^([0-9]{5}) ([0-9]{4})$", "$1-$2")
        },
        {"value": fixed},
        {"reason": _reason_if(z.is_not_null() & _V.is_null(), "zip")},
        distinct=True,
    )  # ~40,000 ZIPs exist: on a large file each is judged once (a third of the time on 1M rows)


# ---- booleans and choices -------------------------------------------------------------

_BOOLEANS = {
    "true": True,
    "false": False,
    "yes": True,
    "no": False,
    "y": True,
    "n": False,
    "1": True,
    "0": False,
}


def normalize_bool(values: pl.Series) -> Normalized:
    """true/false, yes/no, y/n, 1/0 in any case → pl.Boolean."""
    keys = list(_BOOLEANS)
    parsed = (
        pl.col("trimmed")
        .str.to_lowercase()
        .replace_strict(keys, [_BOOLEANS[k] for k in keys], default=None, return_dtype=pl.Boolean)
    )
    return _run(
        values,
        {"trimmed": trimmed(_T)},
        {"value": parsed},
        {"reason": _reason_if(pl.col("trimmed").is_not_null() & _V.is_null(), "bool")},
        distinct=True,
    )


def normalize_choice(values: pl.Series, allowed: tuple[str, ...], reason: str) -> Normalized:
    """Matched after trim, case-insensitively; sent in the allowed value's own spelling.

    With no allowed list, any non-empty value passes as written (trimmed).
    """
    if not allowed:
        return normalize_string(values)
    keys = [choice.lower() for choice in allowed]
    matched = (
        pl.col("trimmed")
        .str.to_lowercase()
        .replace_strict(keys, list(allowed), default=None, return_dtype=pl.String)
    )
    return _run(
        values,
        {"trimmed": trimmed(_T)},
        {"value": matched},
        {"reason": _reason_if(pl.col("trimmed").is_not_null() & _V.is_null(), reason)},
        distinct=True,
    )
