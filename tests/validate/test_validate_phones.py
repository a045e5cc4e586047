"""Phones: agreement with phonenumbers is the rule, checked on arbitrary inputs and fast-path shapes."""

from __future__ import annotations

import phonenumbers
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.validate.phones import _nanp_rules, to_e164


def reference(text: str, region: str) -> str | None:
    """What phonenumbers itself says: E.164 when valid, else None."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def ours(texts: list[str], region: str) -> list[str | None]:
    return to_e164(pl.Series("phone", texts, dtype=pl.String), region).to_list()


def assert_agrees(texts: list[str], region: str) -> None:
    got = ours(texts, region)
    for text, e164 in zip(texts, got, strict=True):
        expected = reference(text, region) if text.strip() else None
        assert e164 == expected, f"{text!r} in {region}: ours {e164!r}, phonenumbers {expected!r}"


def test_fast_path_metadata_is_read_from_phonenumbers() -> None:
    rules = _nanp_rules()
    assert rules is not None
    assert len(rules) == len(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])


def test_common_shapes() -> None:
    texts = [
        "(212) 555-1234",
        "212.555.1234",
        "1-212-555-1234",
        "+1 212 555 1234",
        "2125551234",
        " 212 555 1234 ",
        "555-0100",  # too short
        "(555) 555-0100",  # 555 is not an assigned area code
        "+44 20 7946 0958",
        "011 44 20 7946 0958",
        "212-555-1234 ext. 7",
        "268 464 1234",  # Antigua, inside country code 1
        "123-456-7890",
        "+1",
        "phone",
    ]
    assert_agrees(texts, "US")
    assert ours(["(212) 555-1234", "", "  ", "12"], "US") == ["+12125551234", None, None, None]


def test_other_regions() -> None:
    assert_agrees(["020 7946 0958", "+1 212 555 1234", "2125551234", "07700 900123", "(212) 555-1234"], "GB")
    assert_agrees(["(416) 555-0199", "416 967 1111", "1 416 967 1111", "+1 416 967 1111"], "CA")


_separator = st.sampled_from(
    [" ", "-", ".", "(", ")", "", "", "", "  ", "/", "+", "x", "ext ", "#", ",", "\u00a0", "–"]
)
_area = st.sampled_from(
    ["212", "415", "268", "264", "684", "800", "900", "555", "123", "011", "311", "911", "787"]
)


@st.composite
def nanp_like(draw: st.DrawFn) -> str:
    """Ten or eleven digits close to real North American numbers, with separators sprinkled in."""
    prefix = draw(st.sampled_from(["", "1", "+1", "+", "+ 1", "(1)", "01", "001", "11", "+11"]))
    digits = draw(_area) + draw(st.text("0123456789", min_size=7, max_size=7))
    out = [prefix]
    for digit in digits:
        out.append(draw(_separator) if draw(st.booleans()) and draw(st.booleans()) else "")
        out.append(digit)
    out.append(draw(st.sampled_from(["", "", " ", "-", ".", " x12", ")", "(", "9", "#"])))
    return "".join(out)


_anything = st.text(
    alphabet=st.sampled_from([*"0123456789+-(). xX#ext,/*~", "\u00a0", "\u0661", "\uff11", "a", "Z"]),
    max_size=25,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(nanp_like(), min_size=1, max_size=40), st.sampled_from(["US", "CA", "GB", "DE", "PR"]))
def test_agrees_with_phonenumbers_on_nanp_shapes(texts: list[str], region: str) -> None:
    assert_agrees(texts, region)


@settings(max_examples=200, deadline=None)
@given(st.lists(_anything, min_size=1, max_size=20), st.sampled_from(["US", "GB", "FR", "IN", "BR"]))
def test_agrees_with_phonenumbers_on_arbitrary_text(texts: list[str], region: str) -> None:
    assert_agrees(texts, region)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=10))
def test_agrees_with_phonenumbers_on_any_unicode(texts: list[str]) -> None:
    assert_agrees(texts, "US")


def test_very_long_input_is_invalid_like_phonenumbers() -> None:
    text = "212-555-1234" + " " * 300
    assert_agrees([text, " " * 300 + "2125551234"], "US")


def test_each_distinct_value_judged_once_and_order_kept() -> None:
    texts = ["(212) 555-1234", "bad", "(212) 555-1234", None, "212 555 1234"]
    got = to_e164(pl.Series("m", texts, dtype=pl.String), "US")
    assert got.to_list() == ["+12125551234", None, "+12125551234", None, "+12125551234"]
    assert got.name == "m"


def test_common_shapes_never_reach_phonenumbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The speed claim: well-formed North American numbers are decided by the polars fast path."""
    import pipeline.validate.phones as phones

    def refuse(text: str, region: str) -> str | None:
        raise AssertionError(f"slow path used for {text!r}")

    monkeypatch.setattr(phones, "_slow", refuse)
    texts = ["(212) 555-1234", "212.555.1234", "1-212-555-1234", "+1 212 555 1234", "+1 (268) 464-1234"]
    assert to_e164(pl.Series(texts), "US").to_list() == [
        "+12125551234",
        "+12125551234",
        "+12125551234",
        "+12125551234",
        "+12684641234",
    ]
