"""The mapping loader (every kind of mistake, named by file and key path) and apply_mapping."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import polars as pl
import pytest
import yaml

from pipeline.mapping import apply_mapping, load_mapping
from pipeline.model import (
    CASE_CLIENT_KEY,
    CLIENT_KEY,
    REJECT_SCHEMA,
    SOURCE_FILE,
    SOURCE_ROW,
    Extracted,
    SourceInfo,
    UserError,
)

GENERIC_MAPPING = (Path(__file__).resolve().parents[2] / "mappings" / "generic.yaml").read_text(
    encoding="utf-8"
)


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def generic(tmp_path: Path) -> Path:
    return write(tmp_path, GENERIC_MAPPING, "generic.yaml")


def edited(tmp_path: Path, change: Mapping[str, object], drop: tuple[str, ...] = ()) -> Path:
    """The generic mapping with keys (dotted paths) set or dropped."""
    data = yaml.safe_load(GENERIC_MAPPING)
    for dotted, value in change.items():
        *parents, last = dotted.split("/")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    for dotted in drop:
        *parents, last = dotted.split("/")
        node = data
        for part in parents:
            node = node[part]
        del node[last]
    return write(tmp_path, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


def load_error(path: Path) -> UserError:
    with pytest.raises(UserError) as caught:
        load_mapping(path)
    return caught.value


# ---- load_mapping: the happy path ------------------------------------------------------


def test_generic_mapping_parses_fully(tmp_path: Path) -> None:
    path = generic(tmp_path)
    spec = load_mapping(path)
    assert spec.name == "generic"
    assert spec.external_source == "import"
    assert spec.phone_region == "US" and spec.date_order == "MDY"
    assert spec.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert spec.client.key_column == "Contact ID"
    fields = {f.kayse_field: f for f in spec.client.fields}
    assert fields["first_name"].type == "name" and fields["first_name"].required
    assert fields["mobile"].type == "phone" and not fields["mobile"].required
    assert fields["date_of_birth"].type == "birth_date"
    assert fields["postal_code"].type == "zip" and fields["state"].type == "state"
    case = {f.kayse_field: f for f in spec.case.fields}
    assert case["type"].type == "case_type" and case["type"].required
    assert case["type"].value_map == {
        "pi": "personal_injury",
        "personal injury": "personal_injury",
        "mass tort": "mass_tort",
        "workers comp": "workers_comp",
        "workers' compensation": "workers_comp",
        "wc": "workers_comp",
        "criminal defense": "criminal",
    }
    assert case["status"].default == "open"
    assert case["case_number"].required and case["case_number"].type == "string"
    assert case["external_source_data.incident_date"].type == "date"
    assert spec.case_types[0] == "personal_injury"
    assert spec.case_list is not None and spec.case_list.per_case_type
    # The campaign is described in the mapping but stays off unless `load --campaign` is given.
    assert spec.campaign is not None and spec.campaign.messaging_only and spec.campaign.days == 14


def test_inferred_types_and_campaign(tmp_path: Path) -> None:
    path = edited(
        tmp_path,
        {
            "case/fields/is_obo": "OBO",
            "case/fields/court_date": "Court Date",
            "client/fields/voice_calls_opted_out": "No Calls",
            "campaign": {"name": "c – {case_type}", "days": 7, "start_time": "09:00", "end_time": "17:30"},
            "phone_region": "ca",
            "date_order": "dmy",
        },
    )
    spec = load_mapping(path)
    types = {f.kayse_field: f.type for f in (*spec.client.fields, *spec.case.fields)}
    assert types["is_obo"] == "bool" and types["voice_calls_opted_out"] == "bool"
    assert types["court_date"] == "date"
    assert spec.campaign is not None and spec.campaign.days == 7 and spec.campaign.start_time == "09:00"
    assert spec.phone_region == "CA" and spec.date_order == "DMY"


def test_fields_come_out_in_kayse_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
external_source: import
client: {key: ID, fields: {email: E, last_name: L, first_name: F}}
case: {key: CID, fields: {external_source_data.b: B, status: {column: S}, type: T, case_number: N}}
allowed: {case_types: [civil], case_statuses: [open]}
""",
    )
    spec = load_mapping(path)
    assert [f.kayse_field for f in spec.client.fields] == ["first_name", "last_name", "email"]
    assert [f.kayse_field for f in spec.case.fields] == [
        "case_number",
        "type",
        "status",
        "external_source_data.b",
    ]
    assert spec.name == "m"  # defaults to the file's stem


# ---- load_mapping: every kind of mistake ----------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    error = load_error(tmp_path / "nope.yaml")
    assert "nope.yaml does not exist" in error.message and error.hint


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, "name: x\nclient: [unclosed\n"))
    assert error.message.startswith(f"{tmp_path / 'm.yaml'} is not valid YAML at line 3")


def test_empty_file(tmp_path: Path) -> None:
    assert "is empty" in load_error(write(tmp_path, "")).message


def test_a_key_written_twice_is_refused(tmp_path: Path) -> None:
    text = GENERIC_MAPPING.replace(
        "    mobile: Mobile Phone\n", "    mobile: Mobile Phone\n    mobile: Cell\n"
    )
    again = text.splitlines().index("    mobile: Cell") + 1  # line 14 of mappings/generic.yaml
    error = load_error(write(tmp_path, text))
    assert error.message == f"{tmp_path / 'm.yaml'} has the key 'mobile' twice (again at line {again})"


def test_a_type_that_does_not_fit_the_field(tmp_path: Path) -> None:
    for change in ({"case/fields/type": {"column": "Case Type", "type": "string"}},
                   {"case/fields/name": {"column": "Case Name", "type": "case_status"}}):  # fmt: skip
        error = load_error(edited(tmp_path, change))
        assert "which does not fit the Kayse field" in error.message
        assert error.message.startswith(f"{tmp_path / 'm.yaml'}: case.fields.")


def test_not_a_table(tmp_path: Path) -> None:
    assert "must be a table" in load_error(write(tmp_path, "- a\n- b\n")).message


@pytest.mark.parametrize(
    ("change", "drop", "expected", "hint"),
    [
        ({"clinet": {}}, (), "m.yaml: clinet is not a known key", "did you mean 'client'?"),
        (
            {"client/fields/mobil": "Mobile"},
            (),
            "m.yaml: client.fields.mobil is not a Kayse client field",
            "did you mean 'mobile'?",
        ),
        (
            {"case/fields/case_numbr": "N"},
            (),
            "m.yaml: case.fields.case_numbr is not a Kayse case field",
            "did you mean 'case_number'?",
        ),
        (
            {"case/fields/status/valeu_map": {}},
            (),
            "m.yaml: case.fields.status.valeu_map is not a known key",
            "did you mean 'value_map'?",
        ),
        (
            {"case/fields/status/value_map": {"Yes": True}},
            (),
            "m.yaml: case.fields.status.value_map must map text to text",
            "quote",
        ),
        (
            {"case/fields/status/value_map": ["a"]},
            (),
            "m.yaml: case.fields.status.value_map must be a table",
            None,
        ),
        (
            {"case/fields/type/value_map": {"PI": "personal_injurie"}},
            (),
            "m.yaml: case.fields.type.value_map gives 'personal_injurie', which is not in allowed.case_types",
            "did you mean 'personal_injury'?",
        ),
        (
            {"case/fields/status/default": "opne"},
            (),
            "m.yaml: case.fields.status.default gives 'opne', which is not in allowed.case_statuses",
            "did you mean 'open'?",
        ),
        (
            {"case/fields/name": {"column": "Case Name", "type": "text"}},
            (),
            "m.yaml: case.fields.name.type is 'text', not a known type",
            None,
        ),
        (
            {"case/fields/name": {"column": "Case Name", "required": "yes"}},
            (),
            "m.yaml: case.fields.name.required must be true or false",
            None,
        ),
        ({"case/fields/name": {"type": "string"}}, (), "m.yaml: case.fields.name needs a column", None),
        (
            {"case/fields/external_source_data.": "X"},
            (),
            "m.yaml: case.fields.external_source_data. needs a key",
            None,
        ),
        ({}, ("external_source",), "m.yaml: external_source is required but missing", None),
        ({}, ("client/key",), "m.yaml: client.key is required but missing", None),
        (
            {},
            ("allowed",),
            "m.yaml: allowed.case_types is required because case.fields.type is a case type",
            "list the values",
        ),
        ({"phone_region": "XX"}, (), "m.yaml: phone_region is 'XX', which is not a known region code", None),
        ({"date_order": "DYM"}, (), "m.yaml: date_order is 'DYM'; it must be MDY, DMY or YMD", None),
        ({"allowed/case_types": "civil"}, (), "m.yaml: allowed.case_types must be a non-empty list", None),
        (
            {"allowed/case_statuses": ["open", "Open"]},
            (),
            "m.yaml: allowed.case_statuses lists 'Open' twice",
            None,
        ),
        ({"case_list/name": None}, (), "m.yaml: case_list.name is required but missing", None),
        ({"campaign": {"name": "c", "days": 0}}, (), "m.yaml: campaign.days must be a whole number", None),
        ({"campaign": {"name": "c", "start_time": "9am"}}, (), "m.yaml: campaign.start_time is '9am'", None),
        ({"client/fields/first_name": ["a"]}, (), "m.yaml: client.fields.first_name must be text", None),
        ({"client/fields": "First Name"}, (), "m.yaml: client.fields must be a table", None),
    ],
)
def test_mistakes_name_file_and_key_path(
    tmp_path: Path, change: dict[str, object], drop: tuple[str, ...], expected: str, hint: str | None
) -> None:
    error = load_error(edited(tmp_path, change, drop))
    assert expected in error.message, error.message
    assert error.message.startswith(str(tmp_path / "m.yaml"))
    if hint is not None:
        assert error.hint is not None and hint in error.hint, error.hint


# ---- apply_mapping ---------------------------------------------------------------------


def extracted(
    rows: list[dict[str, str | None]], file_name: str = "leads.csv", first_row: int = 2
) -> Extracted:
    columns = list(rows[0])
    frame = pl.DataFrame({c: [r[c] for r in rows] for c in columns}, schema={c: pl.String for c in columns})
    frame = frame.with_columns(
        pl.lit(file_name).alias(SOURCE_FILE),
        pl.Series(SOURCE_ROW, range(first_row, first_row + len(rows)), dtype=pl.Int64),
    )
    info = SourceInfo(path=f"/data/{file_name}", format="csv", rows=len(rows), columns=tuple(columns))
    return Extracted(frame=frame, info=info)


SMALL = """
external_source: import
client:
  key: Contact ID
  fields: {first_name: First, last_name: Last}
case:
  key: Case ID
  fields:
    case_number: {column: Number, default: "N/A"}
    type: {column: Type, value_map: {"PI": personal_injury, " Slip ": premises}}
    status: {default: open}
allowed: {case_types: [personal_injury, premises, civil], case_statuses: [open]}
"""


def small_row(**cells: str | None) -> dict[str, str | None]:
    row: dict[str, str | None] = {
        "Contact ID": "C1", "First": "Ana", "Last": "Lee", "Case ID": "K1", "Number": "1", "Type": "civil",
    }  # fmt: skip
    row.update(cells)
    return row


def test_missing_columns_are_listed_with_what_the_file_has(tmp_path: Path) -> None:
    spec = load_mapping(write(tmp_path, SMALL, "small.yaml"))
    row = small_row()
    del row["Type"], row["Last"]
    with pytest.raises(UserError) as caught:
        apply_mapping([extracted([row], "leads.csv")], spec)
    message = caught.value.message
    assert message.startswith("leads.csv lacks 2 column(s) the mapping small.yaml names: 'Last', 'Type'.")
    assert "The file has: 'Contact ID', 'First', 'Case ID', 'Number'" in message
    assert (
        caught.value.hint is not None
        and "small.yaml" in caught.value.hint
        and "leads.csv" in caught.value.hint
    )


def test_second_source_missing_a_column_is_named(tmp_path: Path) -> None:
    spec = load_mapping(write(tmp_path, SMALL))
    other = small_row()
    del other["Number"]
    with pytest.raises(UserError, match=r"^b\.csv lacks 1 column\(s\).*'Number'"):
        apply_mapping([extracted([small_row()], "a.csv"), extracted([other], "b.csv")], spec)


def test_no_sources_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no source files"):
        apply_mapping([], load_mapping(write(tmp_path, SMALL)))


def test_value_maps_defaults_and_frame_shape(tmp_path: Path) -> None:
    spec = load_mapping(write(tmp_path, SMALL))
    rows = [
        small_row(Type="  pi "),  # trimmed, case-insensitive
        small_row(**{"Case ID": "K2", "Type": "slip", "Number": "  "}),  # map key was written " Slip "
        small_row(**{"Case ID": "K3", "Type": " Civil ", "Number": None}),  # no map entry: kept as read
    ]
    mapped = apply_mapping([extracted(rows)], spec)
    assert mapped.cases.columns == [
        SOURCE_FILE,
        SOURCE_ROW,
        CLIENT_KEY,
        CASE_CLIENT_KEY,
        "case_number",
        "type",
        "status",
    ]
    assert mapped.clients.columns == [SOURCE_FILE, SOURCE_ROW, CLIENT_KEY, "first_name", "last_name"]
    assert mapped.cases["type"].to_list() == ["personal_injury", "premises", " Civil "]
    assert mapped.cases["case_number"].to_list() == ["1", "N/A", "N/A"]
    assert mapped.cases["status"].to_list() == ["open", "open", "open"]  # default-only field
    assert mapped.cases[CASE_CLIENT_KEY].to_list() == ["C1", "C1", "C1"]
    assert mapped.cases[SOURCE_ROW].to_list() == [2, 3, 4]
    assert mapped.raw.height == 3 and mapped.clients.height == 3


def test_several_sources_are_stacked_with_their_problems(tmp_path: Path) -> None:
    spec = load_mapping(write(tmp_path, SMALL))
    first = extracted([small_row(), small_row(**{"Case ID": "K2"})], "a.csv")
    problem = pl.DataFrame(
        {SOURCE_FILE: ["b.csv"], SOURCE_ROW: [9], "field": [None], "value": ["x,y"], "code": ["ragged-row"],
         "message": ["Row 9 has 7 cells, but the header has 6"]},
        schema=REJECT_SCHEMA,
    )  # fmt: skip
    extra = small_row(**{"Case ID": "K3"}) | {"Only In B": "z"}
    second = extracted([extra], "b.csv", first_row=2)
    second = Extracted(frame=second.frame, info=second.info, problems=problem)
    mapped = apply_mapping([first, second], spec)
    assert mapped.clients[SOURCE_FILE].to_list() == ["a.csv", "a.csv", "b.csv"]
    assert mapped.cases[CLIENT_KEY].to_list() == ["K1", "K2", "K3"]
    assert "Only In B" in mapped.raw.columns and mapped.raw["Only In B"].to_list() == [None, None, "z"]
    assert [s.path for s in mapped.sources] == ["/data/a.csv", "/data/b.csv"]
    assert mapped.problems.to_dicts() == problem.to_dicts()
