"""Sample records and types shared by the Kayse client tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.kayse import KayseClient


def client_record(n: int, **overrides: Any) -> dict[str, Any]:
    """A valid client body; `n` makes its external id unique."""
    record: dict[str, Any] = {
        "first_name": f"Ada{n}",
        "last_name": "Lovelace",
        "external_source": "import",
        "external_source_id": f"ext-{n}",
        "mobile": f"+1555{n:07d}",
        "email": f"ada{n}@example.com",
    }
    record.update(overrides)
    return record


def case_record(n: int, **overrides: Any) -> dict[str, Any]:
    """A valid case body of a type the sandbox seeds."""
    record: dict[str, Any] = {
        "case_number": f"CN-{n}",
        "external_source": "import",
        "external_source_id": f"case-{n}",
        "status": "open",
        "type": "personal_injury",
    }
    record.update(overrides)
    return record


MakeClient = Callable[..., KayseClient]
