"""A UTF-8 BOM is skipped where the text starts, not cut off (a copy of the whole file): a file
with one must read exactly as the same file without, on the fast path and the lenient one."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.extract import read_source
from pipeline.extract.csv_reader import decode
from pipeline.model import UserError

cells = st.lists(st.sampled_from([*"ab Z09,;\"\n'é-", "\r\n", "  "]), max_size=5).map("".join)
# A value written by hand, unquoted, with quotes inside: some of these send the file down the
# lenient (csv module) path.
raw_cells = st.sampled_from(['"a"b', '5" tall', 'x"y"z', "plain"])


@st.composite
def files(draw: st.DrawFn) -> str:
    header = draw(
        st.lists(st.sampled_from(["id", "name", "é", "x y", '"q"']), min_size=1, max_size=4, unique=True)
    )
    width = len(header)
    widths = st.one_of(st.just(width), st.integers(min_value=1, max_value=width + 1))
    rows = draw(st.lists(widths.flatmap(lambda n: st.lists(cells, min_size=n, max_size=n)), max_size=10))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(header)
    writer.writerows(rows)
    text = buffer.getvalue()
    if draw(st.booleans()):
        text += f"{draw(raw_cells)}{',1' * (width - 1)}\n"
    return draw(st.sampled_from(["", "\n", "  \n"])) + text


def read_both(tmp_path: Path, text: str, encoding: str | None) -> tuple[object, object]:
    plain, with_bom = tmp_path / "plain", tmp_path / "bom"
    plain.mkdir(exist_ok=True)
    with_bom.mkdir(exist_ok=True)
    (plain / "f.csv").write_bytes(text.encode())
    (with_bom / "f.csv").write_bytes(codecs.BOM_UTF8 + text.encode())
    outcomes = []
    for folder in (plain, with_bom):
        try:
            extracted = read_source(folder / "f.csv", encoding=encoding, delimiter=",")
        except UserError as error:
            outcomes.append(("error", error.args))
            continue
        info = extracted.info
        outcomes.append(
            (extracted.frame.rows(), extracted.problems.rows(), info.columns, info.rows, info.notes)
        )
    return outcomes[0], outcomes[1]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=files(), encoding=st.sampled_from([None, "utf-8", "utf-8-sig"]))
def test_a_bom_file_reads_as_the_same_file_without_one(
    tmp_path: Path, text: str, encoding: str | None
) -> None:
    plain, with_bom = read_both(tmp_path, text, encoding)
    assert with_bom == plain


@pytest.mark.parametrize("body", [b"", b"\n", b" \r\n\t"])
def test_a_bom_with_nothing_after_it_is_an_empty_file(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(codecs.BOM_UTF8 + body)
    with pytest.raises(UserError, match="empty"):
        read_source(path)


def test_the_bom_is_skipped_without_copying_the_file() -> None:
    data = codecs.BOM_UTF8 + b"a,b\n1,2\n" * 1000
    decoded = decode(data, None, "f.csv")
    assert decoded.data is data
    assert decoded.data[decoded.start :].startswith(b"a,b\n")
    assert decoded.encoding == "utf-8-sig"
