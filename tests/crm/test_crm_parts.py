"""The pure parts of `crm fields`: the file's checks list every problem, the YAML round-trips
exactly, and the difference with Kayse is sorted into added, changed, unchanged, only in Kayse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.crm import diff, from_api, parse_mappings
from pipeline.model import CRM_DIRECTIONS, CrmMapping, UserError
from pipeline.report.crm import dump_mappings


def test_every_problem_is_listed_at_once() -> None:
    text = (
        "mappings:\n"
        "  - {kayse_field: a, crm_field: x, direction: up}\n"
        "  - {kayse_field: '  ', crm_field: x}\n"
        "  - {kayse_field: b}\n"
        "  - {kayse_field: a, crm_field: y, colour: red}\n"
        "  - 42\n"
    )
    with pytest.raises(UserError) as raised:
        parse_mappings(text)
    message = raised.value.message
    assert "5 problems" in message or "6 problems" in message
    for words in (
        "mapping 1: direction 'up'",
        "mapping 2: kayse_field is empty",
        "mapping 3: crm_field is empty",
        "mapping 4: unknown key(s) colour",
        "mapping 4: kayse_field 'a' is already mapped by mapping 1",
        "mapping 5: is not a mapping",
    ):
        assert words in message, words
    assert raised.value.exit_code == 2


@pytest.mark.parametrize("text", ["", "mappings: {a: b}\n", "- a\n", "mappings: [\n"])
def test_not_a_mapping_list_is_refused(text: str) -> None:
    with pytest.raises(UserError):
        parse_mappings(text)


def test_a_missing_direction_is_the_apis_default() -> None:
    assert parse_mappings("mappings:\n  - {kayse_field: a, crm_field: b}\n") == [
        CrmMapping("a", "b", "bidirectional")
    ]


field = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() != "")


@given(
    st.lists(st.tuples(field, field, st.sampled_from(CRM_DIRECTIONS)), max_size=8, unique_by=lambda t: t[0])
)
def test_pulled_yaml_parses_back_to_exactly_what_kayse_holds(items: list[tuple[str, str, str]]) -> None:
    api = [{"kayse_field": k, "crm_field": c, "direction": d} for k, c, d in items]
    assert [m.as_api() for m in parse_mappings(dump_mappings(api))] == api


def test_the_difference() -> None:
    held = from_api(
        [
            {"kayse_field": "a", "crm_field": "x", "direction": "inbound"},
            {"kayse_field": "b", "crm_field": "y", "direction": "bidirectional"},
            {"kayse_field": "c", "crm_field": "z", "direction": "outbound"},
        ]
    )
    wanted = [CrmMapping("a", "x", "inbound"), CrmMapping("b", "y", "outbound"), CrmMapping("d", "w")]
    result = diff(wanted, held)
    assert result.added == (CrmMapping("d", "w"),)
    assert result.changed == ((held[1], wanted[1]),)
    assert result.unchanged == (wanted[0],)
    assert result.only_in_kayse == (held[2],)
    assert result.to_send == (CrmMapping("d", "w"), wanted[1])
    assert diff(held, held).to_send == ()
