"""The CSV reader on small real files: encodings, dialects, quoting, ragged and blank rows."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipeline.extract import read_source
from pipeline.model import REJECT_SCHEMA, SOURCE_FILE, SOURCE_ROW, UserError


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def rows(path: Path, **options: str) -> list[tuple[object, ...]]:
    return read_source(path, **options).frame.drop(SOURCE_FILE).rows()


def test_cp1252_export_is_detected_and_decoded(tmp_path: Path) -> None:
    path = write(tmp_path, "crm.csv", "name,city\nJosé Müller,Zürich\nRenée,“Paris”\n".encode("cp1252"))
    extracted = read_source(path)
    assert extracted.info.encoding == "cp1252"
    assert extracted.frame.get_column("name").to_list() == ["José Müller", "Renée"]
    assert extracted.frame.get_column("city").to_list() == ["Zürich", "“Paris”"]


def test_bytes_cp1252_leaves_undefined_are_read_as_latin1(tmp_path: Path) -> None:
    # One is a stray byte; two or more are the mark of another encoding (Shift JIS, say), and the
    # file is refused until one is named: --encoding cp1252 reads them as Latin-1 all the same.
    assert rows(write(tmp_path, "stray.csv", b"name\nA\x81BC\xe9\n")) == [("A\x81BCé", 2)]
    path = write(tmp_path, "odd.csv", b"name\nA\x81B\x9dC\xe9\n")
    with pytest.raises(UserError, match="is not UTF-8, and read as Windows-1252") as caught:
        read_source(path)
    assert "--encoding cp1252 reads it as Windows-1252 all the same" in (caught.value.hint or "")
    assert read_source(path, encoding="cp1252").frame.rows() == [("A\x81B\x9dCé", "odd.csv", 2)]


def test_utf8_with_bom_keeps_first_header_clean(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.csv", "\ufeffemail,name\nx@y.z,Zoë\n".encode())
    extracted = read_source(path)
    assert extracted.info.encoding == "utf-8-sig"
    assert extracted.info.columns == ("email", "name")
    assert rows(path) == [("x@y.z", "Zoë", 2)]


def test_utf16_with_bom_and_tabs(tmp_path: Path) -> None:
    path = write(tmp_path, "u16.tsv", "name\tcity\nRenée\tMünchen\n".encode("utf-16"))
    extracted = read_source(path)
    assert (extracted.info.encoding, extracted.info.delimiter) == ("utf-16", "\t")
    assert rows(path) == [("Renée", "München", 2)]


def test_plain_utf8_is_not_mistaken_for_cp1252(tmp_path: Path) -> None:
    path = write(tmp_path, "u8.csv", "name\nJosé\n".encode())
    extracted = read_source(path)
    assert extracted.info.encoding == "utf-8"
    assert rows(path) == [("José", 2)]


def test_invalid_utf8_past_the_sample_falls_back_to_cp1252(tmp_path: Path) -> None:
    body = "name\n" + "plain\n" * 20_000 + "José\n"
    path = write(tmp_path, "late.csv", "é,".encode()[:0] + body.encode("cp1252"))
    extracted = read_source(path)
    assert extracted.info.encoding == "cp1252"
    assert extracted.frame.get_column("name")[-1] == "José"
    assert extracted.frame.get_column(SOURCE_ROW)[-1] == 20_002


def test_encoding_override_wins_and_bad_override_is_a_user_error(tmp_path: Path) -> None:
    path = write(tmp_path, "l1.csv", "name\nJosé\n".encode("latin-1"))
    assert read_source(path, encoding="latin-1").info.encoding == "iso8859-1"
    with pytest.raises(UserError, match="unknown encoding 'klingon'"):
        read_source(path, encoding="klingon")
    with pytest.raises(UserError, match="not valid UTF-8") as caught:
        read_source(path, encoding="utf-8")
    assert caught.value.hint is not None and "cp1252" in caught.value.hint


@pytest.mark.parametrize(
    ("delimiter", "name"), [(";", "semicolon"), ("\t", "tab"), ("|", "pipe"), (",", "comma")]
)
def test_delimiter_is_detected(tmp_path: Path, delimiter: str, name: str) -> None:
    text = delimiter.join(["name", "phone", "note"]) + "\n"
    text += delimiter.join(["Ann", "555", '"a, b; c | d"']) + "\n"
    text += delimiter.join(["Bob", "556", "x"]) + "\n"
    extracted = read_source(write(tmp_path, "d.csv", text.encode()))
    assert extracted.info.delimiter == delimiter
    assert name in extracted.info.describe()
    assert extracted.frame.get_column("note").to_list() == ["a, b; c | d", "x"]


def test_delimiter_override_accepts_names(tmp_path: Path) -> None:
    path = write(tmp_path, "one.csv", b"a;b\n1;2\n")
    # Forcing a comma reads one column named "a;b".
    assert read_source(path, delimiter="comma").info.columns == ("a;b",)
    assert read_source(path, delimiter="semicolon").info.columns == ("a", "b")
    with pytest.raises(UserError, match="unusable delimiter"):
        read_source(path, delimiter=";;")


def test_quoted_commas_quotes_and_newlines_keep_row_numbers(tmp_path: Path) -> None:
    data = (
        b"name,note,zip\r\n"
        b'"Doe, Jane","said ""hi""",02134\r\n'
        b'Ann,"line one\r\nline two\nline three",00501\r\n'
        b"Bob,plain,10001\r\n"
    )
    assert rows(write(tmp_path, "q.csv", data)) == [
        ("Doe, Jane", 'said "hi"', "02134", 2),
        ("Ann", "line one\r\nline two\nline three", "00501", 3),
        ("Bob", "plain", "10001", 4),
    ]


def test_ragged_rows_are_problems_not_rows(tmp_path: Path) -> None:
    data = b'a,b,c\n1,2,3\n"multi\nline",5,6\nshort,1\nlong,1,2,3,"x\ny"\n7,8,9\n'
    extracted = read_source(write(tmp_path, "r.csv", data))
    assert extracted.frame.drop(SOURCE_FILE).rows() == [
        ("1", "2", "3", 2),
        ("multi\nline", "5", "6", 3),
        ("7", "8", "9", 6),
    ]
    problems = extracted.problems
    assert problems.schema == pl.Schema(REJECT_SCHEMA)
    assert problems.select(SOURCE_ROW, "code", "field", "message").rows() == [
        (4, "ragged-row", None, "row 4 has 2 values but the header has 3 columns"),
        (5, "ragged-row", None, "row 5 has 5 values but the header has 3 columns"),
    ]
    assert problems.get_column("value").to_list() == ["short,1", 'long,1,2,3,"x\ny"']
    assert problems.get_column(SOURCE_FILE).to_list() == ["r.csv", "r.csv"]
    assert any("ragged-row" in note for note in extracted.info.notes)


def test_trailing_empty_value_makes_a_row_ragged(tmp_path: Path) -> None:
    extracted = read_source(write(tmp_path, "t.csv", b"a,b\n1,2,\n3,\n4\n"))
    assert extracted.frame.drop(SOURCE_FILE).rows() == [("3", None, 3)]
    assert extracted.problems.get_column(SOURCE_ROW).to_list() == [2, 4]


def test_long_ragged_value_is_truncated(tmp_path: Path) -> None:
    extracted = read_source(write(tmp_path, "long.csv", b"a,b\n1,2," + b"x" * 2000 + b"\n"))
    value = extracted.problems.get_column("value")[0]
    assert len(value) == 500 and value.endswith("…") and value.startswith("1,2,xxx")


def test_text_is_never_typed(tmp_path: Path) -> None:
    data = b"zip,amount,flag,date\n02134,0010.50,true,2024-01-02\n00501,1e3,FALSE,01/02/2024\n"
    assert rows(write(tmp_path, "types.csv", data)) == [
        ("02134", "0010.50", "true", "2024-01-02", 2),
        ("00501", "1e3", "FALSE", "01/02/2024", 3),
    ]
    extracted = read_source(tmp_path / "types.csv")
    assert all(dtype == pl.String for name, dtype in extracted.frame.schema.items() if name != SOURCE_ROW)
    assert extracted.frame.schema[SOURCE_ROW] == pl.Int64


def test_blank_rows_are_dropped_but_counted(tmp_path: Path) -> None:
    data = b"\na,b\n1,2\n\n,\n  ,\t\n3,4\n"
    extracted = read_source(write(tmp_path, "blank.csv", data))
    assert extracted.frame.drop(SOURCE_FILE).rows() == [("1", "2", 3), ("3", "4", 7)]
    assert extracted.info.notes == ("skipped 3 blank rows",)
    assert extracted.problems.height == 0


def test_empty_cells_are_null_and_whitespace_is_kept(tmp_path: Path) -> None:
    assert rows(write(tmp_path, "e.csv", b'a,b,c\n,"", x \n')) == [(None, None, " x ", 2)]


def test_header_names_are_trimmed(tmp_path: Path) -> None:
    assert read_source(write(tmp_path, "h.csv", b" First Name ,\tPhone\n1,2\n")).info.columns == (
        "First Name",
        "Phone",
    )


def test_duplicate_header_names_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        read_source(write(tmp_path, "dup.csv", b"Phone,Name,Phone \n1,2,3\n"))
    assert (
        caught.value.message
        == "dup.csv: duplicate column names in the header (row 1): 'Phone' (columns 1, 3)"
    )
    assert caught.value.hint


def test_unnamed_column_with_values_is_refused_but_empty_one_ignored(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="column 2 of the header"):
        read_source(write(tmp_path, "u.csv", b"a,,b\n1,2,3\n"))
    extracted = read_source(write(tmp_path, "trailing.csv", b"a,b,\n1,2,\n"))
    assert extracted.info.columns == ("a", "b")
    assert extracted.frame.drop(SOURCE_FILE).rows() == [("1", "2", 2)]


def test_header_only_file_gives_an_empty_frame_with_columns(tmp_path: Path) -> None:
    extracted = read_source(write(tmp_path, "h.csv", b"email,name\r\n"))
    assert extracted.frame.columns == ["email", "name", SOURCE_FILE, SOURCE_ROW]
    assert extracted.frame.height == 0
    assert extracted.info.rows == 0


@pytest.mark.parametrize("data", [b"", b"\n\n  \r\n"])
def test_empty_file_is_a_user_error(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(UserError, match="empty"):
        read_source(write(tmp_path, "empty.csv", data))


def test_malformed_quotes_are_read_leniently(tmp_path: Path) -> None:
    data = b'a,b\n"a"b,c\n5" tall,2\n'
    assert rows(write(tmp_path, "m.csv", data)) == [("ab", "c", 2), ('5" tall', "2", 3)]


def test_old_mac_line_ends(tmp_path: Path) -> None:
    assert rows(write(tmp_path, "mac.csv", b"a,b\r1,2\r3,4\r")) == [("1", "2", 2), ("3", "4", 3)]


def test_large_file_numbers_rows_across_multiline_records(tmp_path: Path) -> None:
    lines = ["id,note"]
    for index in range(2, 30_002):
        lines.append(f'{index},"two\nlines"' if index % 1000 == 0 else f"{index},x")
    extracted = read_source(write(tmp_path, "big.csv", ("\n".join(lines) + "\n").encode()))
    frame = extracted.frame
    assert frame.height == 30_000
    assert (frame.get_column("id").cast(pl.Int64) == frame.get_column(SOURCE_ROW)).all()


def test_ragged_rows_after_multiline_values_in_a_windows_file(tmp_path: Path) -> None:
    data = b'id,note\r\n1,"a\r\nb"\r\n2,"c\nd",extra\r\n3,"say ""x""\r\n"\r\n4\r\n5,ok\r\n'
    extracted = read_source(write(tmp_path, "win.csv", data))
    assert extracted.frame.drop(SOURCE_FILE).rows() == [
        ("1", "a\r\nb", 2),
        ("3", 'say "x"\r\n', 4),
        ("5", "ok", 6),
    ]
    assert extracted.problems.select(SOURCE_ROW, "message").rows() == [
        (3, "row 3 has 3 values but the header has 2 columns"),
        (5, "row 5 has 1 value but the header has 2 columns"),
    ]


def test_malformed_quotes_in_a_cp1252_file(tmp_path: Path) -> None:
    data = 'name,size\n"Renée"x,5" tall\nJosé,2\n'.encode("cp1252")
    extracted = read_source(write(tmp_path, "mq.csv", data))
    assert extracted.info.encoding == "cp1252"
    assert extracted.frame.drop(SOURCE_FILE).rows() == [("Renéex", '5" tall', 2), ("José", "2", 3)]


def test_ragged_records_far_into_a_large_file_keep_their_exact_text(tmp_path: Path) -> None:
    # Only the lines of ragged records are read back (the line pass keeps numbers, not text):
    # rows far past the first chunk, one spanning lines, must still come back exactly.
    lines = [b"id,note,zip"] + [b'%d,"say ""%d""",0%04d' % (i, i, i) for i in range(2, 40_002)]
    lines[25_000] = b'25001,"two\nlines",1,extra'
    lines[39_999] = b"40000,short"
    extracted = read_source(write(tmp_path, "big.csv", b"\n".join(lines) + b"\n"))
    assert extracted.problems.select(SOURCE_ROW, "value").rows() == [
        (25_001, '25001,"two\nlines",1,extra'),
        (40_000, "40000,short"),
    ]
    frame = extracted.frame
    assert frame.height == 40_000 - 2
    assert frame.filter(pl.col(SOURCE_ROW) == 25_002).drop(SOURCE_FILE).rows() == [
        ("25002", 'say "25002"', "025002", 25_002)
    ]


def test_the_frame_has_one_chunk_per_column(tmp_path: Path) -> None:
    # Later stages select and filter columns of it; a many-chunk frame would be copied each time.
    body = b"a,b\n" + b"".join(b"%d,x%d\n" % (i, i) for i in range(100_000)) + b"\n,\n7,y\n"
    frame = read_source(write(tmp_path, "chunks.csv", body)).frame
    assert frame.height == 100_001
    assert set(frame.n_chunks("all")) == {1}


@pytest.mark.parametrize("name", ["clients[1].csv", "clients*.csv", "clients?.csv", "~clients.csv"])
def test_a_file_name_is_never_a_pattern(tmp_path: Path, name: str) -> None:
    # polars reads the file from its path: a name that looks like a glob must still be that file.
    write(tmp_path, "clients1.csv", b"a,b\nwrong,file\n")
    path = write(tmp_path, name, b'a,b\n1,""\n,2\n')
    assert rows(path) == [("1", None, 2), (None, "2", 3)]


def test_quoted_and_unquoted_empty_values_are_both_null_in_a_large_file(tmp_path: Path) -> None:
    body = b"a,b,c\n" + b'x,"",\n,y,""\n' * 50_000
    frame = read_source(write(tmp_path, "empties.csv", body)).frame
    assert frame.select(pl.col("a", "b", "c").null_count()).row(0) == (50_000, 50_000, 100_000)
    assert set(frame.n_chunks("all")) == {1}


def test_a_stray_nul_byte_is_read_and_its_cell_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "nul.csv", b"name,notes,phone\nAnn,ok,1\nBob,bad\x00byte,2\nCy,,3\n")
    extracted = read_source(path)
    # Shown as the visible ␀, so no report or request carries the NUL itself.
    assert rows(path) == [("Ann", "ok", "1", 2), ("Bob", "bad\u2400byte", "2", 3), ("Cy", None, "3", 4)]
    problems = extracted.problems
    assert problems.schema == pl.Schema(REJECT_SCHEMA)
    assert problems.select(SOURCE_ROW, "field", "value", "code").rows() == [
        (3, "notes", "bad\u2400byte", "nul-byte")
    ]
    assert "row 3, column 'notes' (column 2)" in problems.get_column("message")[0]
    assert "1 cell with a NUL byte reported as problems (nul-byte)" in extracted.info.notes


def test_real_binaries_are_still_refused(tmp_path: Path) -> None:
    for name, data in [
        ("blob.csv", bytes(range(256)) * 8),
        ("utf16-no-bom.csv", "name,city\nAnn,Paris\n".encode("utf-16-le")),
        ("photo.csv", b"\x89PNG\r\n\x1a\n" + b"name,x\n" * 50),
        ("archive.csv", b"\x1f\x8b\x08\x00" + b"a" * 100),
    ]:
        with pytest.raises(UserError, match="not a text or spreadsheet file"):
            read_source(write(tmp_path, name, data))


def test_a_utf8_file_is_parsed_from_disk_and_read_whole_only_for_the_line_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # polars reads a UTF-8 file from disk while the reader searches its bytes a piece at a time:
    # a large export is never held whole in memory beside its frame. Only a record that may be
    # short sends the reader to the file's bytes, for the line pass that names it.
    from pipeline.extract import csv_reader

    whole_reads: list[Path] = []
    read = csv_reader.read_file_bytes

    def recorded(path: Path, size: int = -1) -> bytes:
        if size < 0:
            whole_reads.append(path)
        return read(path, size)

    monkeypatch.setattr(csv_reader, "read_file_bytes", recorded)
    monkeypatch.setattr(csv_reader, "PIECE_BYTES", 4096)  # several pieces, each counted
    body = "id,name,notes\n" + "".join(
        f'{i},"Doe, J{i}","say ""hi"", then\nleave"\n' for i in range(2, 3_002)
    )
    clean = write(tmp_path, "clean.csv", "\ufeff".encode() + body.encode())
    extracted = read_source(clean)
    assert whole_reads == []
    assert extracted.info.encoding == "utf-8-sig"
    assert extracted.problems.height == 0
    assert extracted.frame.row(0) == ("2", "Doe, J2", 'say "hi", then\nleave', "clean.csv", 2)
    assert extracted.frame.get_column(SOURCE_ROW)[-1] == 3_001  # a record's number, not its lines'

    short = write(tmp_path, "short.csv", (body + "9999,only two\n").encode())
    extracted = read_source(short)
    assert whole_reads == [short]
    assert extracted.problems.select(SOURCE_ROW, "code").rows() == [(3_002, "ragged-row")]
    assert extracted.frame.height == 3_000
