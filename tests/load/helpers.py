"""Small builders for hand-made validation results, so plan and ledger tests need no files."""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline.model import (
    CASE_CLIENT_KEY,
    SOURCE_FILE,
    SOURCE_ROW,
    CampaignSpec,
    EntitySpec,
    ListSpec,
    MappingSpec,
    ValidationResult,
    empty_rejects,
)

SPEC = MappingSpec(
    name="test",
    path="test.yaml",
    external_source="import",
    client=EntitySpec("Contact ID", ()),
    case=EntitySpec("Case ID", ()),
    case_types=("personal_injury", "civil"),
    case_statuses=("open", "closed"),
    case_list=ListSpec(name="import {case_type}"),
    campaign=CampaignSpec(name="outreach {case_type}", days=14),
)


def client_row(cid: str, row: int, **fields: Any) -> dict[str, Any]:
    base = {
        "external_source_id": cid,
        "first_name": "Ana",
        "last_name": "Núñez",
        "email": None,
        "mobile": "+12125550123",
        "postal_code": "02134",
        SOURCE_FILE: "leads.csv",
        SOURCE_ROW: row,
    }
    return {**base, **fields}


def case_row(
    case_id: str, cid: str, row: int, case_type: str = "personal_injury", **fields: Any
) -> dict[str, Any]:
    base = {
        "external_source_id": case_id,
        "case_number": f"N-{case_id}",
        "type": case_type,
        "status": "open",
        "description": None,
        "external_source_data.incident_date": "2024-05-01",
        CASE_CLIENT_KEY: cid,
        SOURCE_FILE: "leads.csv",
        SOURCE_ROW: row,
    }
    return {**base, **fields}


def result(
    clients: list[dict[str, Any]], cases: list[dict[str, Any]], spec: MappingSpec = SPEC
) -> ValidationResult:
    return ValidationResult(
        sources=(),
        mapping=spec,
        rows_read=len(cases),
        clients=pl.DataFrame(clients),
        cases=pl.DataFrame(cases),
        rejects=empty_rejects(),
        rejected_rows=pl.DataFrame(
            {SOURCE_FILE: [], SOURCE_ROW: []}, schema={SOURCE_FILE: pl.String, SOURCE_ROW: pl.Int64}
        ),
    )


def leads(n: int, case_type: str = "personal_injury") -> ValidationResult:
    return result(
        [client_row(f"C{i}", i + 2) for i in range(n)],
        [case_row(f"K{i}", f"C{i}", i + 2, case_type) for i in range(n)],
    )
