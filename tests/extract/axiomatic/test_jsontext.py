"""Values as served: numbers keep their text, nested objects become dotted columns."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pipeline.extract.axiomatic.jsontext import cell_text, flatten, json_type, parse_json, to_json_text


def test_numbers_keep_the_text_they_were_served_as() -> None:
    body = b'{"a": 2134, "b": 1.50, "c": -0.0, "d": 1E+2, "e": 12345678901234567890.000}'
    parsed = parse_json(body)
    assert {k: cell_text(v) for k, v in parsed.items()} == {
        "a": "2134",
        "b": "1.50",
        "c": "-0.0",
        "d": "1E+2",
        "e": "12345678901234567890.000",
    }
    assert all(json_type(v) == "number" for v in parsed.values())


def test_null_booleans_strings_and_lists() -> None:
    parsed = parse_json(
        b'{"n": null, "t": true, "f": false, "s": "0123", "l": [1.50, "x", null, {"k": true}]}'
    )
    assert cell_text(parsed["n"]) == ""
    assert (cell_text(parsed["t"]), cell_text(parsed["f"])) == ("true", "false")
    assert cell_text(parsed["s"]) == "0123" and json_type(parsed["s"]) == "string"
    assert cell_text(parsed["l"]) == '[1.50,"x",null,{"k":true}]'


def test_nested_objects_become_dotted_columns_in_served_order() -> None:
    record = parse_json(
        b'{"id": "1", "customFields": {"caseType": "auto", "deep": {"x": 3}}, "z": "\xc3\xa9"}'
    )
    types: dict[str, str] = {}
    assert flatten(record, types) == {
        "id": "1",
        "customFields.caseType": "auto",
        "customFields.deep.x": "3",
        "z": "é",
    }
    assert types["customFields"] == "object" and types["customFields.deep.x"] == "number"


def test_not_json_raises_value_error() -> None:
    for body in (b"<html>hi</html>", b'{"cut": [1, 2', b"\xff\xfe"):
        try:
            parse_json(body)
        except ValueError:
            continue
        raise AssertionError(f"{body!r} was taken as JSON")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


def _leaves(value: Any, prefix: str, out: dict[str, Any]) -> None:
    for key, child in value.items():
        name = f"{prefix}{key}"
        if isinstance(child, dict):
            _leaves(child, name + ".", out)
        elif name not in out:
            out[name] = child


@given(st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=6))
def test_every_leaf_comes_back_as_its_served_text(record: dict[str, Any]) -> None:
    served = json.dumps(record, ensure_ascii=False)
    cells = flatten(parse_json(served.encode("utf-8")))
    expected: dict[str, Any] = {}
    _leaves(record, "", expected)
    assert set(cells) == set(expected)
    for name, value in expected.items():
        if value is None:
            assert cells[name] == ""
        elif isinstance(value, bool):
            assert cells[name] == json.dumps(value)
        elif isinstance(value, int | float):
            assert cells[name] == json.dumps(value)  # the text the server wrote
        elif isinstance(value, str):
            assert cells[name] == value
        else:
            assert json.loads(cells[name]) == value
            assert cells[name] == to_json_text(parse_json(json.dumps(value).encode()))
