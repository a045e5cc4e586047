"""Phone numbers to E.164, agreeing exactly with the `phonenumbers` library, at polars speed.

The rule is phonenumbers' own: a cell is valid exactly when
`phonenumbers.is_valid_number(phonenumbers.parse(cell, region))` is true, and is sent as
`format_number(..., E164)`. Calling phonenumbers costs ~80 µs a number, so the common shape
(a North American number written with spaces, dots, dashes or parentheses, optionally with a
leading 1 or +1) is decided with polars regexes built at run time from phonenumbers' own
metadata for country code 1; every other distinct value goes through phonenumbers itself.

This module must never accept a number phonenumbers rejects or reject one it accepts: the
fast path only ever says "valid"; anything it is not sure of falls through to phonenumbers.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
import polars as pl
from phonenumbers import PhoneMetadata

from pipeline.validate.normalize import Normalized, distinct_values, per_row, trimmed

_MAX_INPUT = 250  # phonenumbers refuses longer inputs outright (_MAX_INPUT_STRING_LENGTH)
_NANP = 1
_SEPARATORS = r"[ .\-()]"


def _anchored(pattern: str) -> str:
    return f"^(?:{pattern})$"


def _desc_pattern(desc: object, length: int) -> str | None:
    """The desc's pattern when a number of `length` digits can match it (phonenumbers' own test)."""
    if desc is None:
        return None
    pattern = getattr(desc, "national_number_pattern", None)
    possible = getattr(desc, "possible_length", ())
    if not pattern or (possible and length not in possible):
        return None
    return str(pattern)


@lru_cache(maxsize=1)
def _nanp_rules() -> tuple[tuple[str | None, str, str], ...] | None:
    """Per region of country code 1, in phonenumbers' order: (leading digits, general, any type).

    Returns None when the metadata does not look as this fast path assumes (then every number
    goes through phonenumbers, which is slower but still right).
    """
    rules: list[tuple[str | None, str, str]] = []
    type_names = (
        "premium_rate",
        "toll_free",
        "shared_cost",
        "voip",
        "personal_number",
        "pager",
        "uan",
        "voicemail",
        "fixed_line",
        "mobile",
    )
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(_NANP, ()):
        metadata = PhoneMetadata.metadata_for_region(region, None)
        if metadata is None:
            continue
        general = _desc_pattern(metadata.general_desc, 10)
        if general is None:
            rules.append((metadata.leading_digits, "(?!)", "(?!)"))
            continue
        types = [p for name in type_names if (p := _desc_pattern(getattr(metadata, name, None), 10))]
        types = list(dict.fromkeys(types))  # fixed-line and mobile patterns are often identical
        rules.append((metadata.leading_digits, general, "|".join(types) if types else "(?!)"))
    us = PhoneMetadata.metadata_for_region("US", None)
    if not rules or us is None or us.national_prefix_for_parsing != "1" or us.international_prefix != "011":
        return None
    return tuple(rules)


@lru_cache(maxsize=1)
def _us_general() -> str:
    metadata = PhoneMetadata.metadata_for_region("US", None)
    pattern = _desc_pattern(metadata.general_desc if metadata is not None else None, 10)
    return _anchored(pattern or "(?!)")


def _valid_nanp(national: pl.Series) -> pl.Series:
    """For 10-digit strings: is the number valid as phonenumbers decides for country code 1?

    Mirrors `_region_code_for_number_from_list` then `is_valid_number_for_region`: the first
    region that claims the number (by leading digits, or by being valid there) decides it.
    """
    rules = _nanp_rules()
    assert rules is not None
    frame = pl.DataFrame({"n": national}).with_row_index("i")
    valid = pl.Series("valid", [False] * national.len(), dtype=pl.Boolean)
    undecided = frame
    for leading, general, types in rules:
        if undecided.height == 0:
            break
        valid_here = pl.col("n").str.contains(_anchored(general)) & pl.col("n").str.contains(_anchored(types))
        claims = pl.col("n").str.contains(f"^(?:{leading})") if leading is not None else valid_here
        judged = undecided.with_columns(claims=claims, valid_here=valid_here)
        decided = judged.filter(pl.col("claims"))
        if decided.height:
            valid = valid.scatter(decided["i"], decided["valid_here"])
        undecided = judged.filter(~pl.col("claims")).select("i", "n")
    return valid


def _slow(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def to_e164(values: pl.Series, region: str) -> pl.Series:
    """E.164 text for each valid phone, null for empty or invalid cells (tell them apart by the input).

    Distinct values are judged once; the common North American shape without phonenumbers.
    """
    positions, distinct = distinct_values(values.cast(pl.String))
    return _distinct_e164(distinct.get_column("text"), region).gather(positions).alias(values.name)


def normalize_phone(values: pl.Series, region: str) -> Normalized:
    """`to_e164` as a normalizer: the reason "phone" for a cell that is not blank and not valid."""
    text = values.cast(pl.String)
    positions, distinct = distinct_values(text)
    e164 = _distinct_e164(distinct.get_column("text"), region)
    reasons = distinct.select(
        pl.when(trimmed(pl.col("text")).is_not_null() & pl.lit(e164).is_null()).then(pl.lit("phone"))
    ).to_series()
    value = per_row(text, distinct.get_column("text"), e164, positions)
    return Normalized(value.alias(values.name), reasons.alias("reason"), positions)


def _distinct_e164(text: pl.Series, region: str) -> pl.Series:
    """E.164 for each of the distinct `text` values (null for blank, null or invalid)."""
    region = region.upper()
    e164 = pl.Series("e164", [None] * text.len(), dtype=pl.String)
    unique = text.rename("text")
    judged = (unique.is_not_null() & (unique.str.strip_chars() != "")).fill_null(False)
    rules = _nanp_rules()
    if rules is not None and unique.len():
        national_forms = r"^\+1[0-9]{10}$|^1?[0-9]{10}$" if region == "US" else r"^\+1[0-9]{10}$"
        cleaned = pl.col("text").str.strip_chars().str.replace_all(_SEPARATORS, "")
        shapes = (
            unique.to_frame()
            .with_columns(cleaned=cleaned)
            .with_columns(national=pl.col("cleaned").str.slice(-10))
            .select(
                "national",
                candidate=pl.col("cleaned").str.contains(national_forms)
                & (pl.col("text").str.len_chars() <= _MAX_INPUT)
                # "1" + ten digits is read as country code 1 only when the ten digits fit the
                # general pattern (phonenumbers' _maybe_extract_country_code); else phonenumbers.
                & (
                    (pl.col("cleaned").str.len_chars() == 10)
                    | pl.col("cleaned").str.starts_with("+")
                    | pl.col("national").str.contains(_us_general())
                ),
            )
        )
        positions = (shapes.get_column("candidate") & judged).arg_true()
        if positions.len():
            national = shapes.get_column("national").gather(positions)
            ok = _valid_nanp(national)
            e164 = e164.scatter(positions.filter(ok), ("+1" + national).filter(ok))
    remaining = (e164.is_null() & judged).arg_true()
    if remaining.len():
        checked = [_slow(text, region) for text in unique.gather(remaining).to_list()]
        e164 = e164.scatter(remaining, pl.Series(checked, dtype=pl.String))
    return e164
