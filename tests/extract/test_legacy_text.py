"""A file that is neither UTF-8 nor Western text in Windows-1252 is refused, never read garbled."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.extract import read_source
from pipeline.extract._legacy_text import HEAD_BYTES
from pipeline.model import UserError

# Real Western names with the accents cp1252 exports carry: never refused.
WESTERN = ["José", "García", "Müller", "François", "Zoë", "Ångström", "Renée", "Bjørn", "Ñúñez",
           "Søren", "Þór", "Çelik", "Öztürk", "Œuvre", "Šimon", "Ýmir", "Smith", "O'Brien", "Lee"]  # fmt: skip
GREEK = "αβγδεζηθικλμνξοπρστυφχψωάέήίόύώ"
CYRILLIC = "абвгдежзийклмнопрстуфхцчшщъыьэюя"


def _csv(tmp_path: Path, names: list[tuple[str, str]], encoding: str) -> Path:
    lines = ["First Name,Last Name", *(f"{first},{last}" for first, last in names)]
    path = tmp_path / "names.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.tuples(st.sampled_from(WESTERN), st.sampled_from(WESTERN)), min_size=1, max_size=40))
def test_western_names_in_cp1252_are_read_as_they_are(tmp_path: Path, names: list[tuple[str, str]]) -> None:
    extracted = read_source(_csv(tmp_path, names, "cp1252"))
    assert extracted.info.encoding == "cp1252" or all(f"{a}{b}".isascii() for a, b in names)
    assert extracted.frame.select("First Name", "Last Name").rows() == names


def _words(alphabet: str) -> st.SearchStrategy[str]:
    # Four letters at least: a capital with a tonos (Ά) is a symbol in cp1252 (¢), and a name is
    # told by the letters after it.
    return st.text(alphabet=alphabet, min_size=4, max_size=10).map(str.capitalize)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    script=st.sampled_from(
        [
            ("Greek", GREEK, "cp1253"),
            ("Greek", GREEK, "iso-8859-7"),
            ("Cyrillic", CYRILLIC, "cp1251"),
            ("Cyrillic", CYRILLIC, "koi8-r"),
        ]
    ),
    data=st.data(),
)
def test_greek_and_cyrillic_names_are_refused_and_read_with_the_encoding_named(
    tmp_path: Path, script: tuple[str, str, str], data: st.DataObject
) -> None:
    _, alphabet, encoding = script
    words = _words(alphabet)
    names = data.draw(st.lists(st.tuples(words, words), min_size=3, max_size=30))
    path = _csv(tmp_path, names, encoding)
    with pytest.raises(
        UserError, match=r"names\.csv is not UTF-8, and read as Windows-1252 \(cp1252\) its text is garbled"
    ):
        read_source(path)
    assert read_source(path, encoding=encoding).frame.select("First Name", "Last Name").rows() == names


@pytest.mark.parametrize(
    ("text", "encoding", "said"),
    [
        (
            "Νίκος,Παπαδόπουλος\nΜαρία,Γεωργίου\nΆννα,Οικονόμου\n",
            "iso-8859-7",
            "Greek text (cp1253 or iso8859-7)",
        ),
        ("Иван,Петров\nОльга,Смирнова\nСергей,Кузнецов\n", "cp1251", "Cyrillic text (cp1251 or koi8-r)"),
        (
            "太郎,山田\n花子,佐藤\n次郎,鈴木\n美咲,高橋\n健太,田中\n陽菜,伊藤\n",
            "shift_jis",
            "Chinese, Japanese or Korean text (",
        ),
    ],
)
def test_the_hint_names_the_likely_script_and_encoding(
    tmp_path: Path, text: str, encoding: str, said: str
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(("First Name,Last Name\n" + text).encode(encoding))
    with pytest.raises(UserError) as caught:
        read_source(path)
    hint = caught.value.hint or ""
    assert said in hint and "check a few names in the report" in hint


def test_garbled_text_deep_in_a_big_file_is_found(tmp_path: Path) -> None:
    # Past the first MB, only windows of the file are looked at; text that is Greek all through
    # (a Greek export) is in every one of them. An ASCII start the size of the head changes nothing.
    greek = "Νίκος,Παπαδόπουλος\n".encode("cp1253")
    path = tmp_path / "big.csv"
    path.write_bytes(b"First Name,Last Name\n" + b"Ann,Lee\n" * (HEAD_BYTES // 8 + 1) + greek * 200_000)
    with pytest.raises(UserError, match="its text is garbled"):
        read_source(path)


@pytest.mark.parametrize(
    ("text", "encoding"),
    [("Άάάχ,Άάάχ\nΆάάχ,Άάάχ\nΆάάά,Άάάά\n", "cp1253"), ("Чич,Чуч\nЧач,Ечч\nРич,Луч\n", "cp1251")],
)
def test_words_with_letters_cp1252_shows_as_signs_still_count(
    tmp_path: Path, text: str, encoding: str
) -> None:
    # χ and ч are the bytes of × and ÷ in cp1252, and a capital with a tonos (Ά) that of ¢: found
    # by hypothesis, these words were once cut short of three letters and the file read garbled.
    path = tmp_path / "short.csv"
    path.write_bytes(("First Name,Last Name\n" + text).encode(encoding))
    with pytest.raises(UserError, match="its text is garbled"):
        read_source(path)
