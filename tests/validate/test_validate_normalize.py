"""Each normalizer on its own: what it sends, what it refuses, and why."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.validate import normalize as n

TODAY = dt.date(2026, 6, 15)


def run(
    normalizer: Callable[..., n.Normalized], values: Sequence[str | None], *args: object
) -> list[tuple[object, str | None]]:
    result = normalizer(pl.Series("x", list(values), dtype=pl.String), *args)
    return list(zip(result.value.to_list(), result.reason.to_list(), strict=True))


# ---- dates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "order", "expected"),
    [
        ("2021-03-04", "MDY", ("2021-03-04", None)),
        ("2021-3-4", "DMY", ("2021-03-04", None)),  # year first is always Y-M-D
        ("2021-03-04T00:00:00", "MDY", ("2021-03-04", None)),  # an XLSX date cell
        ("2021-03-04 13:45:10.123", "MDY", ("2021-03-04", None)),
        ("03/04/2021", "MDY", ("2021-03-04", None)),
        ("03/04/2021", "DMY", ("2021-04-03", None)),  # 3 April
        ("3/4/2021", "MDY", ("2021-03-04", None)),
        ("03-04-2021", "MDY", ("2021-03-04", None)),
        ("03.04.2021", "DMY", ("2021-04-03", None)),
        (" 12/31/1999 ", "MDY", ("1999-12-31", None)),
        ("02/29/2024", "MDY", ("2024-02-29", None)),
        ("02/29/2023", "MDY", (None, "date-impossible")),
        ("02/30/1999", "MDY", (None, "date-impossible")),
        ("13/01/2020", "MDY", (None, "date-impossible")),
        ("2021-13-01", "MDY", (None, "date-impossible")),
        ("03/04/21", "MDY", (None, "date-two-digit-year")),
        ("3-4-85", "DMY", (None, "date-two-digit-year")),
        ("03/04-2021", "MDY", (None, "date")),  # mixed separators
        ("03/04/2021", "YMD", (None, "date-ymd")),  # YMD files must write the year first
        ("March 4, 2021", "MDY", (None, "date")),
        ("44197", "DMY", (None, "date-dmy")),  # an Excel serial number
        ("", "MDY", (None, None)),
        ("   ", "MDY", (None, None)),
        (None, "MDY", (None, None)),
    ],
)
def test_dates(text: str | None, order: n.DateOrder, expected: tuple[str | None, str | None]) -> None:
    assert run(n.normalize_date, [text], order) == [expected]


def test_birth_dates() -> None:
    got = run(
        n.normalize_birth_date,
        ["06/15/2026", "06/16/2026", "01/01/1900", "12/31/1899", "02/30/1999", ""],
        "MDY",
        TODAY,
    )
    assert got == [
        ("2026-06-15", None),
        (None, "dob-future"),
        ("1900-01-01", None),
        (None, "dob-too-old"),
        (None, "date-impossible"),
        (None, None),
    ]


_FORMATS = {
    "MDY": ["{y:04d}-{m:02d}-{d:02d}", "{y:04d}-{m:02d}-{d:02d}T00:00:00", "{m:02d}/{d:02d}/{y:04d}",
            "{m}/{d}/{y:04d}", "{m:02d}-{d:02d}-{y:04d}", "{m}.{d}.{y:04d}"],
    "DMY": ["{y:04d}-{m:02d}-{d:02d}", "{d:02d}/{m:02d}/{y:04d}", "{d}/{m}/{y:04d}", "{d:02d}.{m:02d}.{y:04d}",
            "{d}-{m}-{y:04d}"],
    "YMD": ["{y:04d}-{m:02d}-{d:02d}", "{y:04d}/{m}/{d}", "{y:04d}.{m:02d}.{d:02d}", "{y:04d}-{m}-{d} 08:30"],
}  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31)), min_size=1, max_size=10
    ),
    st.sampled_from(["MDY", "DMY", "YMD"]),
    st.data(),
)
def test_formatting_then_parsing_returns_the_date(
    dates: list[dt.date], order: n.DateOrder, data: st.DataObject
) -> None:
    texts = [data.draw(st.sampled_from(_FORMATS[order])).format(y=d.year, m=d.month, d=d.day) for d in dates]
    got = run(n.normalize_date, texts, order)
    assert got == [(d.isoformat(), None) for d in dates], texts


# ---- emails, names, strings -----------------------------------------------------------


def test_emails() -> None:
    got = run(
        n.normalize_email,
        [" Ana.Lopez@Example.COM ", "a@b.co", "no-at-sign.com", "two@@x.com", "a@b", "@x.com", "a b@x.com",
         "a@x..com", "a@.x.com", "a@x.com.", "", None],
    )  # fmt: skip
    assert got == [
        ("ana.lopez@example.com", None), ("a@b.co", None), (None, "email"), (None, "email"), (None, "email"),
        (None, "email"), (None, "email"), (None, "email"), (None, "email"), (None, "email"), (None, None),
        (None, None),
    ]  # fmt: skip


def test_names_keep_unicode_exactly() -> None:
    got = run(n.normalize_name, ["  José   María ", "ZOË", "o'brien", "Nguyễn\tVăn", "", None])
    assert [v for v, _ in got] == ["José María", "ZOË", "o'brien", "Nguyễn Văn", None, None]
    assert all(reason is None for _, reason in got)


def test_decomposed_accents_are_not_recomposed() -> None:
    decomposed = "Jose\u0301"
    assert run(n.normalize_name, [decomposed]) == [(decomposed, None)]


def test_plain_strings_trimmed_inner_text_kept() -> None:
    assert run(n.normalize_string, ["  a  b \n", "\t", None]) == [("a  b", None), (None, None), (None, None)]


# ---- states, ZIPs, booleans, choices --------------------------------------------------


def test_states() -> None:
    got = run(
        n.normalize_state,
        ["ny", "New York", " new   york ", "N.Y.", "TX", "district of columbia", "D.C.", "Puerto Rico", "gu",
         "US Virgin Islands", "AE", "armed forces pacific", "Narnia", "New", "", None],
    )  # fmt: skip
    assert [v for v, _ in got] == [
        "NY", "NY", "NY", "NY", "TX", "DC", "DC", "PR", "GU", "VI", "AE", "AP", None, None, None, None
    ]  # fmt: skip
    assert [r for _, r in got][-4:] == ["state", "state", None, None]


def test_every_state_code_and_name_round_trips() -> None:
    codes = list(n.STATES)
    assert run(n.normalize_state, codes) == [(c, None) for c in codes]
    assert run(n.normalize_state, [name.upper() for name in n.STATES.values()]) == [(c, None) for c in codes]


def test_zips() -> None:
    got = run(
        n.normalize_zip,
        ["02134", "2134", "501", "12345-6789", "123456789", "12345 6789", "2134.0", "12", "123456", "12345678",
         "1234-5678", "ABCDE", "", None],
    )  # fmt: skip
    assert got == [
        ("02134", None), ("02134", None), ("00501", None), ("12345-6789", None), ("12345-6789", None),
        ("12345-6789", None), ("02134", None), (None, "zip"), (None, "zip"), (None, "zip"), (None, "zip"),
        (None, "zip"), (None, None), (None, None),
    ]  # fmt: skip


def test_booleans() -> None:
    got = run(
        n.normalize_bool, ["true", "FALSE", "Yes", "no", "Y", "n", "1", "0", " yes ", "maybe", "2", "", None]
    )
    assert got == [
        (True, None), (False, None), (True, None), (False, None), (True, None), (False, None), (True, None),
        (False, None), (True, None), (None, "bool"), (None, "bool"), (None, None), (None, None),
    ]  # fmt: skip


def test_choices_take_the_allowed_spelling() -> None:
    allowed = ("Personal_Injury", "civil")
    got = run(n.normalize_choice, [" personal_injury ", "CIVIL", "criminal", ""], allowed, "case-type")
    assert got == [("Personal_Injury", None), ("civil", None), (None, "case-type"), (None, None)]


def test_every_reason_has_a_code_and_a_message() -> None:
    codes = {code for code, _ in n.REASONS.values()}
    assert {"invalid-phone", "invalid-date", "date-of-birth-in-future", "date-of-birth-too-old", "invalid-email",
            "invalid-state", "invalid-zip", "invalid-boolean", "missing-required", "unknown-case-type",
            "unknown-case-status"} == codes  # fmt: skip


# Python's str.split/strip also treat the ASCII separators U+001C–U+001F as whitespace, which
# Unicode (and polars) do not; the properties below compare with Python, so they leave them out.
_NOT_ASCII_SEPARATORS = st.characters(codec="utf-8", exclude_characters="\x1c\x1d\x1e\x1f")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(_NOT_ASCII_SEPARATORS, max_size=20), min_size=1, max_size=10))
def test_names_only_ever_change_whitespace(texts: list[str]) -> None:
    for text, (value, reason) in zip(texts, run(n.normalize_name, texts), strict=True):
        assert reason is None
        if value is None:
            assert not text.strip()
            continue
        assert isinstance(value, str) and value == value.strip() and "  " not in value
        assert "".join(value.split()) == "".join(text.split())  # every other character kept, in order


@settings(max_examples=100, deadline=None)
@given(st.lists(st.emails() | st.text(_NOT_ASCII_SEPARATORS, max_size=20), min_size=1, max_size=10))
def test_emails_are_accepted_lowercased_or_rejected_never_altered_otherwise(texts: list[str]) -> None:
    for text, (value, reason) in zip(texts, run(n.normalize_email, texts), strict=True):
        if not text.strip():
            assert (value, reason) == (None, None)
        elif reason is None:
            assert isinstance(value, str) and value == text.strip().lower()
            assert value.count("@") == 1 and " " not in value
        else:
            assert (value, reason) == (None, "email")
