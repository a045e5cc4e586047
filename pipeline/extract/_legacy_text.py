"""Tell when a file that is not UTF-8 is not Windows-1252 either, before its text is garbled.

Why it exists: a CSV that is not UTF-8 is read as cp1252, the encoding of US and Western European
Windows exports. A Greek, Cyrillic or Japanese export read that way comes out as other Latin
letters ("Νίκος" as "Íßêïò") without an error, and those names would be sent to clients. Two
signs tell such a file, and neither occurs in Western text:
- words of three or more letters none of which is ASCII: Western words mix in ASCII letters
  ("José", "Müller", "été"), while every letter of a Greek or Cyrillic word is a byte >= 0x80;
- the five bytes cp1252 leaves undefined, frequent in the double-byte encodings of East Asia.
The file is then refused, with charset-normalizer's guess of its encoding as the hint. Only a
bounded sample is looked at, spread over the file. Nothing here reads with a guessed encoding:
the decision is these two signs, and a person passes --encoding.
"""

from __future__ import annotations

import codecs
import re

from pipeline.model import UserError

CP1252_LETTERS = rb"\x83\x8a\x8c\x8e\x9a\x9c\x9e\x9f\xaa\xb5\xba\xc0-\xd6\xd8-\xf6\xf8-\xff"
# × and ÷ are letters in the other scripts' code pages (Greek Χ χ, Cyrillic Ч ч), and in Western
# text stand between numbers: inside a word they do not break it.
WORD_BYTES = CP1252_LETTERS + rb"\xd7\xf7"
ALL_LETTERS = rb"A-Za-z" + WORD_BYTES
NO_ASCII_WORD = re.compile(
    rb"(?<![" + ALL_LETTERS + rb"])[" + WORD_BYTES + rb"]{3,}(?![" + ALL_LETTERS + rb"])"
)
MIXED_WORD = re.compile(rb"[A-Za-z][" + CP1252_LETTERS + rb"]|[" + CP1252_LETTERS + rb"][A-Za-z]")
UNDEFINED_IN_CP1252 = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
MIN_FOREIGN_WORDS = 3  # and more of them than Western (mixed) words
MIN_UNDEFINED = 2  # never text: one may be a stray byte, two are a pattern

SAMPLE_WINDOWS = 16
WINDOW_BYTES = 1 << 16
HEAD_BYTES = 1 << 20

SCRIPTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # a script as a person names it, and the encodings its exports come in (Python's names)
    ("Greek", ("cp1253", "iso8859_7")),
    ("Cyrillic", ("cp1251", "koi8_r")),
    ("Hebrew", ("cp1255",)),
    ("Arabic", ("cp1256",)),
    ("Thai", ("cp874",)),
    # Names in Chinese characters alone cannot tell the language: the whole family is named.
    ("Chinese, Japanese or Korean", ("cp932", "gbk", "big5", "cp949")),
)
"""The encodings of the exports this check meets; a guess among them is only a hint, never a read."""


def sample(data: bytes) -> bytes:
    """The file's first MB and windows spread over the rest: bounded work, whatever the size."""
    if len(data) <= HEAD_BYTES + SAMPLE_WINDOWS * WINDOW_BYTES:
        return data
    step = (len(data) - HEAD_BYTES) // SAMPLE_WINDOWS
    windows = [
        data[HEAD_BYTES + i * step : HEAD_BYTES + i * step + WINDOW_BYTES] for i in range(SAMPLE_WINDOWS)
    ]
    return b"\n".join([data[:HEAD_BYTES], *windows])


def refuse_if_not_western(data: bytes, source_file: str) -> None:
    """Raise a UserError when `data` (not UTF-8, about to be read as cp1252) reads as another script."""
    text = sample(data)
    foreign_words = NO_ASCII_WORD.findall(text)
    looks_foreign = len(foreign_words) >= MIN_FOREIGN_WORDS and len(foreign_words) > len(
        MIXED_WORD.findall(text)
    )
    if not looks_foreign and len(UNDEFINED_IN_CP1252.findall(text)) < MIN_UNDEFINED:
        return
    shown = ", ".join(repr(word.decode("cp1252")) for word in foreign_words[:3])
    as_read = f" (values read as {shown})" if shown else ""
    guess = _likely_script(text)
    if guess is None:
        hint = "pass the file's encoding with --encoding (ask the system that exported it), e.g. cp1251 or shift_jis"
    else:
        script, encodings = guess
        named = [codecs.lookup(encoding).name for encoding in encodings]  # cp1253, iso8859-7, …
        listed = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} or {named[-1]}"
        hint = (
            f"it is probably {script} text ({listed}): pass the encoding of the system that exported it,"
            f" e.g. --encoding {named[0]}, and check a few names in the report"
        )
    hint += "; --encoding cp1252 reads it as Windows-1252 all the same"
    raise UserError(
        f"{source_file} is not UTF-8, and read as Windows-1252 (cp1252) its text is garbled{as_read}",
        hint,
    )


def _likely_script(text: bytes) -> tuple[str, list[str]] | None:
    """charset-normalizer's best guess among SCRIPTS' encodings: its script, and the script's
    encodings with the guess first."""
    import charset_normalizer  # only for a file about to be refused: not on any common path

    candidates = [encoding for _, encodings in SCRIPTS for encoding in encodings]
    best = charset_normalizer.from_bytes(text, cp_isolation=candidates).best()
    for script, encodings in SCRIPTS:
        if best is not None and best.encoding in encodings:
            return script, [best.encoding, *(encoding for encoding in encodings if encoding != best.encoding)]
    return None
