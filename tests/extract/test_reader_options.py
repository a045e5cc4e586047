"""The library keywords behind --encoding and --delimiter: an explicit choice replaces detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.extract import read_sources
from pipeline.extract.csv_reader import read_csv
from pipeline.model import UserError

GREEK = "Όνομα,Πόλη,Τηλέφωνο\nΓιώργος,Αθήνα,2101234567\nΕλένη,Θεσσαλονίκη,2310123456\n"


def greek_file(tmp_path: Path) -> Path:
    path = tmp_path / "pelates.csv"
    path.write_bytes(GREEK.encode("iso-8859-7"))
    return path


def test_an_explicit_encoding_reads_a_greek_file_right(tmp_path: Path) -> None:
    path = greek_file(tmp_path)
    # Every byte is valid cp1252, but read so the text is Latin letters no Western word has
    # ("Áèßíá"): the file is refused, and the hint names Greek, never read garbled.
    with pytest.raises(UserError, match="its text is garbled") as caught:
        read_sources([path])
    assert "probably Greek text" in (caught.value.hint or "")

    for extracted in (
        read_sources([path], encoding="iso-8859-7")[0],
        read_csv(str(path), encoding="iso-8859-7"),
    ):
        assert extracted.info.encoding == "iso8859-7"
        assert extracted.info.columns == ("Όνομα", "Πόλη", "Τηλέφωνο")
        assert extracted.frame["Πόλη"].to_list() == ["Αθήνα", "Θεσσαλονίκη"]


def test_the_same_encoding_applies_to_every_source(tmp_path: Path) -> None:
    first = greek_file(tmp_path)
    second = tmp_path / "more.csv"
    second.write_bytes("Όνομα,Πόλη,Τηλέφωνο\nΝίκος,Πάτρα,2610123456\n".encode("iso-8859-7"))
    read = read_sources([first, second], encoding="iso-8859-7")
    assert [e.frame["Όνομα"].to_list() for e in read] == [["Γιώργος", "Ελένη"], ["Νίκος"]]


def test_an_explicit_delimiter_replaces_sniffing(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text("a;b,c\n1;2,3\n4;5,6\n", encoding="utf-8")
    assert read_sources([path], delimiter=",")[0].info.columns == ("a;b", "c")
    by_semicolon = read_sources([path], delimiter="semicolon")[0]
    assert by_semicolon.info.columns == ("a", "b,c")
    assert by_semicolon.info.delimiter == ";"
    assert by_semicolon.frame["b,c"].to_list() == ["2,3", "5,6"]
    assert read_csv(str(path), delimiter="tab").info.columns == ("a;b,c",)


def test_an_unknown_encoding_is_a_user_error_with_a_hint(tmp_path: Path) -> None:
    path = greek_file(tmp_path)
    with pytest.raises(UserError) as caught:
        read_sources([path], encoding="greek-ish")
    assert caught.value.message == "unknown encoding 'greek-ish'"
    assert caught.value.hint is not None and "codec name" in caught.value.hint


def test_an_unusable_delimiter_is_a_user_error_with_a_hint(tmp_path: Path) -> None:
    path = greek_file(tmp_path)
    with pytest.raises(UserError) as caught:
        read_sources([path], encoding="iso-8859-7", delimiter="::")
    assert caught.value.hint is not None and "semicolon" in caught.value.hint
