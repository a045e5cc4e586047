"""JSON as served, turned into text cells without changing a character of any value.

Why it exists: the extract must hold exactly what the CRM served. Python's json module would
turn `1.50` into the float 1.5 and `1e2` into 100.0, so numbers are kept as the text they were
served as (`JsonNumber`, a str that remembers it was a number, so a field that turns from number
to string between pages can still be told). Nested objects become dotted columns
(`customFields.caseType`); lists stay JSON text.
"""

from __future__ import annotations

import json
from typing import Any


class JsonNumber(str):
    """A JSON number, kept as the exact text served (`2134`, `1.50`, `-0.0`, `1E+2`)."""

    __slots__ = ()


def parse_json(body: bytes) -> Any:
    """Parse a response body, numbers kept as served text. Raises ValueError if it is not JSON."""
    text = body.decode("utf-8-sig")  # JSON is UTF-8; a BOM is tolerated
    return json.loads(text, parse_float=JsonNumber, parse_int=JsonNumber, parse_constant=JsonNumber)


def json_type(value: Any) -> str:
    """The JSON type of a parsed value: null, boolean, number, string, object or array."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, JsonNumber):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__  # never met for parsed JSON


def to_json_text(value: Any) -> str:
    """Compact JSON of a parsed value, numbers written back exactly as they were served."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, JsonNumber):
        return str.__str__(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(to_json_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{to_json_text(str(k))}:{to_json_text(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"not a parsed JSON value: {type(value).__name__}")


def cell_text(value: Any) -> str:
    """One cell: null → empty, booleans true/false, numbers and strings as served, lists as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # JsonNumber included: its text is the served text
        return str.__str__(value)
    return to_json_text(value)


def flatten(record: dict[str, Any], types: dict[str, str] | None = None) -> dict[str, str]:
    """One record as {column: text}; nested objects become dotted columns, in the served order.

    `types`, when given, receives each column's JSON type (objects included, under their own
    name), so a caller can see a field that changes type between records. An empty object adds
    no column (it has no values); a key that collides with a dotted name is kept once, first wins.
    """
    cells: dict[str, str] = {}

    def walk(obj: dict[str, Any], prefix: str) -> None:
        for key, value in obj.items():
            name = f"{prefix}{key}"
            if types is not None:
                types[name] = json_type(value)
            if isinstance(value, dict):
                walk(value, name + ".")
            elif name not in cells:
                cells[name] = cell_text(value)

    walk(record, "")
    return cells
