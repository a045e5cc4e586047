"""Realistic, deliberately imperfect lead exports: the sample data and the benchmark input.

Validation can only be trusted against data that looks like what firms really export: accents and
apostrophes in names, phones typed five different ways, states as names or codes in any case, ZIPs
with leading zeros and ZIP+4, two date styles, descriptions with commas, quotes and line breaks —
plus every kind of defect the validator promises to catch, at a known rate and at known rows (the
returned `GeneratedExport.defects`). Columns are built with polars from one seeded byte stream, so a
million rows take seconds and the same seed always gives the same file.

Never: use real people's data (emails are @example.* domains, phones are in the 555-01xx range
reserved for fiction), or import the pipeline (the generator must stay independent of what it tests).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re
import unicodedata
import zipfile
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

GENERIC_HEADERS: tuple[str, ...] = (
    "Contact ID", "First Name", "Last Name", "Email", "Mobile Phone", "Date of Birth",
    "Address 1", "Address 2", "City", "State", "ZIP", "Case ID", "Case Number", "Case Name",
    "Case Type", "Case Status", "Incident Date", "Description",
)  # fmt: skip

LEGALEDGE_HEADERS: tuple[str, ...] = (
    "Client No", "Surname", "Given Name", "E-mail Address", "Cell", "DOB", "Street", "Town",
    "State/Province", "Postcode", "Matter No", "Matter Ref", "Matter Title", "Practice Area",
    "Matter Status", "Date Opened", "Notes",
)  # fmt: skip

# Every kind of deliberate defect, in the order they are dealt out (round robin), so any export
# with at least len(DEFECT_KINDS) defects holds each kind at least once.
DEFECT_KINDS: tuple[str, ...] = (
    "invalid_phone",
    "impossible_date",
    "future_birth_date",
    "pre1900_birth_date",
    "malformed_email",
    "unknown_state",
    "bad_zip",
    "missing_first_name",
    "missing_last_name",
    "unknown_case_type",
    "unknown_case_status",
    "duplicate_case_id",
    "conflicting_contact",
    "formula_description",
    "several_problems",  # invalid phone + malformed email + missing last name in one row
    "ragged_row",  # only with ragged=True: the record stops after the 7th column
)

RAGGED_KEEP_COLUMNS = 7
"""A ragged record keeps only its first seven fields (the export was cut off mid-row)."""

# --------------------------------------------------------------------------------------
# Pools. Weights are integers; a pool row is drawn with probability weight / sum(weights).
# --------------------------------------------------------------------------------------

FIRST_NAMES: tuple[tuple[str, int], ...] = (
    ("James", 6), ("Mary", 6), ("Michael", 5), ("Jennifer", 5), ("Robert", 5), ("Linda", 4),
    ("José", 5), ("María", 5), ("Zoë", 3), ("Siobhán", 2), ("François", 2), ("Renée", 3),
    ("Björn", 1), ("Chloé", 2), ("Mohammed", 3), ("Aaliyah", 3), ("Wei", 2), ("Priya", 3),
    ("DeShawn", 3), ("Anne-Marie", 2), ("Jean-Luc", 1), ("Søren", 1), ("Thảo", 1), ("Łukasz", 1),
    ("Patrick", 3), ("Keisha", 3), ("Luis", 4), ("Ana", 3), ("Daniel", 4), ("Emily", 4),
    ("Hannah", 3), ("Tyler", 3), ("Guadalupe", 2), ("Nicole", 3), ("Kevin", 3), ("Fatima", 2),
)  # fmt: skip

LAST_NAMES: tuple[tuple[str, int], ...] = (
    ("Smith", 6), ("Johnson", 5), ("Williams", 5), ("Brown", 4), ("García", 5), ("Nguyễn", 3),
    ("O'Brien", 3), ("Müller", 2), ("Núñez", 2), ("D'Angelo", 2), ("McDonald", 2),
    ("van der Berg", 1), ("Kowalski", 2), ("Pérez", 3), ("Schröder", 1), ("Lefèvre", 1),
    ("Ødegaard", 1), ("Al-Sayed", 2), ("Smith-Jones", 1), ("Hernández", 4), ("Kim", 3), ("Patel", 4),
    ("Washington", 2), ("Jackson", 3), ("Rodríguez", 4), ("Lopez", 3), ("Chen", 3), ("Davis", 4),
    ("Wilson", 3), ("Thompson", 3), ("Murphy", 2), ("Rossi", 1), ("Okafor", 2), ("Cohen", 2),
)  # fmt: skip

# city, state code, state name, ZIP, area code (real area codes for the city; lines 555-01xx)
CITIES: tuple[tuple[str, str, str, str, str, int], ...] = (
    ("New York", "NY", "New York", "10001", "212", 8),
    ("Brooklyn", "NY", "New York", "11201", "718", 5),
    ("Buffalo", "NY", "New York", "14202", "716", 2),
    ("Los Angeles", "CA", "California", "90012", "213", 7),
    ("San Francisco", "CA", "California", "94103", "415", 3),
    ("San Diego", "CA", "California", "92101", "619", 3),
    ("Chicago", "IL", "Illinois", "60601", "312", 6),
    ("Houston", "TX", "Texas", "77002", "713", 5),
    ("Dallas", "TX", "Texas", "75201", "214", 4),
    ("Austin", "TX", "Texas", "78701", "512", 3),
    ("Miami", "FL", "Florida", "33130", "305", 4),
    ("Orlando", "FL", "Florida", "32801", "407", 2),
    ("Atlanta", "GA", "Georgia", "30303", "404", 4),
    ("Boston", "MA", "Massachusetts", "02108", "617", 5),
    ("Worcester", "MA", "Massachusetts", "01608", "508", 2),
    ("Providence", "RI", "Rhode Island", "02903", "401", 2),
    ("Hartford", "CT", "Connecticut", "06103", "860", 2),
    ("Newark", "NJ", "New Jersey", "07102", "973", 3),
    ("Jersey City", "NJ", "New Jersey", "07302", "201", 2),
    ("Portland", "ME", "Maine", "04101", "207", 1),
    ("Burlington", "VT", "Vermont", "05401", "802", 1),
    ("Manchester", "NH", "New Hampshire", "03101", "603", 1),
    ("Philadelphia", "PA", "Pennsylvania", "19107", "215", 4),
    ("Pittsburgh", "PA", "Pennsylvania", "15222", "412", 2),
    ("Phoenix", "AZ", "Arizona", "85004", "602", 3),
    ("Denver", "CO", "Colorado", "80202", "303", 3),
    ("Seattle", "WA", "Washington", "98101", "206", 3),
    ("Detroit", "MI", "Michigan", "48226", "313", 3),
    ("Minneapolis", "MN", "Minnesota", "55401", "612", 2),
    ("New Orleans", "LA", "Louisiana", "70112", "504", 2),
    ("Las Vegas", "NV", "Nevada", "89101", "702", 2),
    ("Albuquerque", "NM", "New Mexico", "87102", "505", 1),
    ("Washington", "DC", "District of Columbia", "20001", "202", 2),
)

STREETS: tuple[str, ...] = (
    "Main", "Oak", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "Pine",
    "Martin Luther King Jr", "Broadway", "Church", "Highland", "Sunset", "Mill", "River", "5th",
)  # fmt: skip
STREET_SUFFIXES: tuple[str, ...] = ("St", "St.", "Street", "Ave", "Avenue", "Blvd", "Rd", "Dr", "Ln", "Way")
ADDRESS_2: tuple[tuple[str, int], ...] = (
    ("", 70),
    ("Apt 4B", 5),
    ("Apt. 12", 5),
    ("Suite 200", 4),
    ("Unit 7", 4),
    ("#3", 4),
    ("Fl 2", 2),
    ("c/o María López", 1),
)
EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.net", "example.org", "mail.example.com")
DEFENDANTS: tuple[str, ...] = (
    "Acme Trucking Co.", "Globex Corp.", "Initech, LLC", "Metro Transit Authority",
    "Sunrise Apartments LLC", "Blue Ridge Insurance", "Hooli Logistics", "Umbrella Pharma, Inc.",
    "City of Springfield", "Vandelay Industries",
)  # fmt: skip
CASE_TYPE_ABBREVIATIONS: dict[str, str] = {
    "personal_injury": "PI", "civil": "CV", "mass_tort": "MT", "workers_comp": "WC", "criminal": "CR",
}  # fmt: skip

DESCRIPTIONS: tuple[tuple[str, int], ...] = (
    ("", 12),
    ("Rear-ended at a red light on I-95, neck and back pain; ER visit same day.", 8),
    ('Client says the other driver "never even braked".', 6),
    ("Slip and fall at grocery store, wet floor, no warning sign posted.", 6),
    ("Injured on the job (forklift), employer disputes the claim.", 5),
    ("Referred by Dr. Patel. Prefers texts after 5 p.m.", 5),
    ("Hip implant recall; implanted 2014, revision surgery 2019.", 4),
    ("Dog bite, neighbor's pit bull; photos on file.", 4),
    ('Spanish speaker – address letters to "Sra. López", not the client\'s husband.', 3),
    ("DUI charge, 1st offense; arraignment pending.", 3),
    ('Landlord kept the $2,500 deposit for "normal wear and tear".', 3),
    ("Called twice, left voicemail.\nBest time: weekday mornings.", 1),
    ("- Waiting on police report\n- Medical records requested 3/2", 1),
    ("Client's daughter (Zoë) is the contact; she speaks for her mother.", 2),
    ('Talc exposure 1998–2010, diagnosed 2021, "no family history".', 2),
)

FORMULA_DESCRIPTIONS: tuple[str, ...] = (
    '=HYPERLINK("http://example.com/claim?id=4411","Open claim file")',
    "=1+2",
    "@SUM(A1:A9)",
    "+1 (212) 555-0100 call before noon",
)
INVALID_PHONES: tuple[str, ...] = ("555-0123", "(212) 555-01", "212-555-01234", "12345")
MALFORMED_EMAILS: tuple[str, ...] = (
    "maria.garcia@@example.com", "jose at example.com", "zoe.obrien@example", "lee,kim@example.com",
)  # fmt: skip
UNKNOWN_STATES: tuple[str, ...] = ("XZ", "Atlantis", "Nueva York", "QQ")
BAD_ZIPS: tuple[str, ...] = ("ABCDE", "1234567", "9021O", "12")


@dataclass(frozen=True)
class Layout:
    """How one export format spells the same leads: headers, value spellings, date styles."""

    name: str
    headers: tuple[str, ...]  # positional: see _GENERIC_ORDER for what each position holds
    delimiter: str
    encoding: str
    line_terminator: str
    date_formats: tuple[tuple[str, int], ...]  # strftime pattern ("" = left empty), weight
    case_types: tuple[tuple[str, str, int], ...]  # canonical, as written, weight
    case_statuses: tuple[tuple[str, int], ...]  # as written ("" = empty), weight
    unknown_case_types: tuple[str, ...]
    unknown_case_statuses: tuple[str, ...]
    impossible_dates: tuple[str, ...]
    future_birth_dates: tuple[str, ...]
    pre1900_birth_dates: tuple[str, ...]
    contact_id_prefix: str
    case_id_prefix: str
    apostrophe: str = "'"  # legacy Windows CRMs store the typographic ’
    excel_date_format: str = "m/d/yyyy"
    ascii_only_names: frozenset[str] = field(default_factory=frozenset)  # names the encoding lacks


# Positions of the generic export; a layout's headers are in the same order, minus Address 2.
_GENERIC_ORDER = GENERIC_HEADERS

GENERIC = Layout(
    name="generic",
    headers=GENERIC_HEADERS,
    delimiter=",",
    encoding="utf-8",
    line_terminator="\n",
    date_formats=(("%-m/%-d/%Y", 45), ("%m/%d/%Y", 15), ("%Y-%m-%d", 35), ("", 5)),
    case_types=(
        ("personal_injury", "personal_injury", 10),
        ("personal_injury", "Personal Injury", 15),
        ("personal_injury", "PI", 12),
        ("personal_injury", "personal injury", 5),
        ("civil", "civil", 6),
        ("civil", "Civil", 6),
        ("civil", " CIVIL ", 2),
        ("mass_tort", "mass_tort", 5),
        ("mass_tort", "Mass Tort", 8),
        ("mass_tort", "MASS TORT", 2),
        ("workers_comp", "workers_comp", 4),
        ("workers_comp", "Workers Comp", 5),
        ("workers_comp", "Workers' Compensation", 4),
        ("workers_comp", "WC", 2),
        ("criminal", "criminal", 3),
        ("criminal", "Criminal", 4),
        ("criminal", "Criminal Defense", 3),
    ),
    case_statuses=(
        ("active", 10),
        ("Active", 8),
        ("Open - Active", 8),
        ("In Progress", 4),
        ("open", 8),
        ("Open", 10),
        ("OPEN", 2),
        ("pending", 4),
        ("Pending", 6),
        ("On Hold", 3),
        ("closed", 3),
        ("Closed", 6),
        ("Settled", 3),
        ("", 6),
    ),
    unknown_case_types=("Real Estate", "Family Law", "Bankruptcy", "Immigration"),
    unknown_case_statuses=("Dormant", "Reopened?", "Lost", "TBD"),
    impossible_dates=("02/30/1999", "2/30/1999", "4/31/1990", "1987-02-29"),
    future_birth_dates=("7/4/2091", "2088-01-15"),
    pre1900_birth_dates=("3/15/1887", "1899-12-31"),
    contact_id_prefix="C",
    case_id_prefix="K",
)

LEGALEDGE = Layout(
    name="legaledge",
    headers=LEGALEDGE_HEADERS,
    delimiter=";",
    encoding="cp1252",
    line_terminator="\r\n",
    date_formats=(("%d/%m/%Y", 85), ("%-d/%-m/%Y", 10), ("", 5)),
    case_types=(
        ("personal_injury", "Road Traffic Accident", 20),
        ("personal_injury", "Slip & Fall", 10),
        ("personal_injury", "Personal Injury", 8),
        ("civil", "Commercial Litigation", 8),
        ("civil", "Landlord & Tenant", 6),
        ("mass_tort", "Product Liability", 10),
        ("mass_tort", "Pharmaceutical", 4),
        ("workers_comp", "Workers' Compensation", 10),
        ("workers_comp", "Industrial Injury", 5),
        ("criminal", "Criminal Defence", 8),
        ("criminal", "Motoring Offences", 4),
    ),
    case_statuses=(
        ("Live", 20),
        ("Live - Litigation", 8),
        ("New Enquiry", 15),
        ("Open", 5),
        ("Awaiting Docs", 10),
        ("On Hold", 5),
        ("Concluded", 10),
        ("Archived", 6),
        ("", 5),
    ),
    unknown_case_types=("Conveyancing", "Probate", "Family"),
    unknown_case_statuses=("Dormant", "Transferred Out", "Struck Off"),
    impossible_dates=("30/02/1999", "31/04/1990", "29/02/1987"),
    future_birth_dates=("04/07/2091", "15/01/2088"),
    pre1900_birth_dates=("15/03/1887", "31/12/1899"),
    contact_id_prefix="CL-",
    case_id_prefix="MAT-",
    apostrophe="’",
    excel_date_format="dd/mm/yyyy",
    ascii_only_names=frozenset({"Nguyễn", "Thảo", "Łukasz"}),
)


@dataclass(frozen=True)
class GeneratedExport:
    """What was written, and where every deliberate defect sits (as spreadsheet row numbers)."""

    path: Path
    rows: int
    contacts: int
    defects: dict[str, tuple[int, ...]]  # kind -> source rows (header = row 1, first data row = 2)

    def defect_rows(self) -> set[int]:
        return {row for rows in self.defects.values() for row in rows}


# --------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------


def write_generic_export(
    path: Path | str,
    rows: int,
    *,
    seed: int = 0,
    defect_rate: float = 0.02,
    fmt: Literal["csv", "xlsx"] = "csv",
    ragged: bool = False,
) -> GeneratedExport:
    """Write the generic flat lead export (one row per lead) as CSV (UTF-8) or XLSX (typed cells).

    `ragged=True` adds cut-off records (CSV: a short line; XLSX: the same row with its trailing
    cells empty, so both formats hold the same valid records).
    """
    return write_export(GENERIC, path, rows, seed=seed, defect_rate=defect_rate, fmt=fmt, ragged=ragged)


def write_legaledge_export(
    path: Path | str, rows: int, *, seed: int = 0, defect_rate: float = 0.02, ragged: bool = False
) -> GeneratedExport:
    """Write a "LegalEdge CRM" matter export: semicolon-delimited cp1252 CSV, DD/MM/YYYY dates."""
    return write_export(LEGALEDGE, path, rows, seed=seed, defect_rate=defect_rate, fmt="csv", ragged=ragged)


def write_export(
    layout: Layout,
    path: Path | str,
    rows: int,
    *,
    seed: int = 0,
    defect_rate: float = 0.02,
    fmt: Literal["csv", "xlsx"] = "csv",
    ragged: bool = False,
) -> GeneratedExport:
    """Generate `rows` leads in `layout` and write them to `path`."""
    if rows < 1:
        raise ValueError("rows must be at least 1")
    if not 0 <= defect_rate <= 0.3:
        raise ValueError("defect_rate must be between 0 and 0.3 (defective rows are kept apart)")
    if fmt not in ("csv", "xlsx"):
        raise ValueError(f"fmt must be 'csv' or 'xlsx', not {fmt!r}")
    frame, contacts, defects = build_frame(layout, rows, seed=seed, defect_rate=defect_rate, ragged=ragged)
    path = Path(path)
    ragged_positions = [row - 2 for row in defects.get("ragged_row", ())]
    if fmt == "csv":
        _write_csv(frame, path, layout, ragged_positions)
    else:
        _write_xlsx(frame, path, layout, ragged_positions)
    return GeneratedExport(path=path, rows=rows, contacts=contacts, defects=defects)


# --------------------------------------------------------------------------------------
# Building the frame
# --------------------------------------------------------------------------------------


class _Dice:
    """Seeded uniform integers for whole columns at once (one randbytes call per column)."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def ints(self, n: int, upper: int) -> pl.Series:
        """n integers in [0, upper)."""
        words = array("I")
        assert words.itemsize == 4
        words.frombytes(self._random.randbytes(4 * n))
        return pl.Series(words.tolist(), dtype=pl.UInt64) % upper

    def unit(self) -> float:
        return self._random.random()

    def draw(self, pool: pl.DataFrame, n: int, weight: str = "weight") -> pl.DataFrame:
        """n rows of `pool`, each drawn with probability proportional to its `weight` column."""
        expanded = pool.select(pl.all().exclude(weight).repeat_by(pool[weight]).explode())
        return expanded.select(pl.all().gather(self.ints(n, expanded.height)))

    def draw_values(self, pool: Sequence[tuple[str, int]], n: int) -> pl.Series:
        frame = pl.DataFrame({"value": [v for v, _ in pool], "weight": [w for _, w in pool]})
        return self.draw(frame, n)["value"]


_NO_DECOMPOSITION: dict[str, str | int | None] = {"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "ß": "ss"}


def ascii_fold(text: str) -> str:
    """José → Jose, Nguyễn → Nguyen, Łukasz → Lukasz, Ødegaard → Odegaard (for emails)."""
    text = text.translate(str.maketrans(_NO_DECOMPOSITION))
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _names_pool(pool: Sequence[tuple[str, int]], layout: Layout) -> pl.DataFrame:
    written = [
        ascii_fold(name) if name in layout.ascii_only_names else name.replace("'", layout.apostrophe)
        for name, _ in pool
    ]
    local = [ascii_fold(name).lower().replace("'", "").replace(" ", "") for name, _ in pool]
    return pl.DataFrame({"name": written, "local": local, "weight": [w for _, w in pool]})


def _days_since_epoch(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _dates(dice: _Dice, n: int, first: dt.date, last: dt.date, layout: Layout) -> pl.Series:
    """n random dates in [first, last], each written in one of the layout's date styles."""
    offset = dice.ints(n, (last - first).days + 1).cast(pl.Int32) + _days_since_epoch(first)
    days = offset.cast(pl.Date)
    style = dice.draw_values([(f, w) for f, w in layout.date_formats], n)
    frame = pl.DataFrame({"day": days, "style": style})
    expression: pl.Expr = pl.lit(None, dtype=pl.String)
    for pattern, _ in layout.date_formats:
        if pattern:
            expression = (
                pl.when(pl.col("style") == pattern)
                .then(pl.col("day").dt.strftime(pattern))
                .otherwise(expression)
            )
    return frame.select(expression.alias("date")).to_series()


def _contacts(layout: Layout, count: int, dice: _Dice) -> pl.DataFrame:
    """One row per contact, with every contact column already written as the export shows it."""
    first = dice.draw(_names_pool(FIRST_NAMES, layout), count)
    last = dice.draw(_names_pool(LAST_NAMES, layout), count)
    cities = pl.DataFrame(
        {
            "city": [c[0] for c in CITIES],
            "code": [c[1] for c in CITIES],
            "state_name": [c[2] for c in CITIES],
            "zip": [c[3] for c in CITIES],
            "area": [c[4] for c in CITIES],
            "weight": [c[5] for c in CITIES],
        }
    )
    place = dice.draw(cities, count)
    frame = pl.DataFrame(
        {
            "first": first["name"],
            "first_local": first["local"],
            "last": last["name"],
            "last_local": last["local"],
            "email_style": dice.ints(count, 20),
            "email_number": (dice.ints(count, 90) + 10).cast(pl.String),
            "domain": pl.Series(EMAIL_DOMAINS).gather(dice.ints(count, len(EMAIL_DOMAINS))),
            "line": (dice.ints(count, 100) + 100).cast(pl.String).str.slice(1),  # "00".."99"
            "phone_style": dice.ints(count, 25),
            "street_number": (dice.ints(count, 9899) + 1).cast(pl.String),
            "street": pl.Series(STREETS).gather(dice.ints(count, len(STREETS))),
            "suffix": pl.Series(STREET_SUFFIXES).gather(dice.ints(count, len(STREET_SUFFIXES))),
            "address2": dice.draw_values(ADDRESS_2, count),
            "state_style": dice.ints(count, 20),
            "zip_style": dice.ints(count, 20),
            "plus4": (dice.ints(count, 9000) + 1000).cast(pl.String),
            "stray_space": dice.ints(count, 40),
            "dob": _dates(dice, count, dt.date(1940, 1, 1), dt.date(2006, 12, 31), layout),
        }
    ).hstack(place)
    col = pl.col
    email_local = (
        pl.when(col("email_style") < 10)
        .then(pl.concat_str(col("first_local"), pl.lit("."), col("last_local")))
        .when(col("email_style") < 14)
        .then(pl.concat_str(col("first_local"), col("last_local"), col("email_number")))
        .when(col("email_style") < 17)
        .then(pl.concat_str(col("first_local").str.slice(0, 1), col("last_local")))
        .when(col("email_style") < 19)  # typed with capitals: still valid, normalized to lower case
        .then(pl.concat_str(col("first_local").str.to_titlecase(), pl.lit("."), col("last_local")))
        .otherwise(None)
    )
    area, line = col("area"), col("line")
    phone = (
        pl.when(col("phone_style") < 6)
        .then(pl.format("({}) 555-01{}", area, line))
        .when(col("phone_style") < 10)
        .then(pl.format("{}.555.01{}", area, line))
        .when(col("phone_style") < 14)
        .then(pl.format("+1 {} 555 01{}", area, line))
        .when(col("phone_style") < 18)
        .then(pl.format("{}55501{}", area, line))
        .when(col("phone_style") < 21)
        .then(pl.format("{}-555-01{}", area, line))
        .when(col("phone_style") < 23)
        .then(pl.format("1-{}-555-01{}", area, line))
        .otherwise(None)  # no mobile on file
    )
    state = (
        pl.when(col("state_style") < 9)
        .then(col("code"))
        .when(col("state_style") < 11)
        .then(col("code").str.to_lowercase())
        .when(col("state_style") < 12)
        .then(col("code").str.to_titlecase())
        .when(col("state_style") < 17)
        .then(col("state_name"))
        .when(col("state_style") < 19)
        .then(col("state_name").str.to_uppercase())
        .otherwise(col("state_name").str.to_lowercase())
    )
    zip_code = (
        pl.when(col("zip_style") < 17)
        .then(col("zip"))
        .otherwise(pl.format("{}-{}", col("zip"), col("plus4")))
    )
    first_name = pl.when(col("stray_space") == 0).then(pl.format("{} ", col("first"))).otherwise(col("first"))
    return frame.select(
        first_name.alias("First Name"),
        col("last").alias("Last Name"),
        pl.when(email_local.is_not_null())
        .then(pl.format("{}@{}", email_local, col("domain")))
        .otherwise(None)
        .alias("Email"),
        phone.alias("Mobile Phone"),
        col("dob").alias("Date of Birth"),
        pl.format("{} {} {}", col("street_number"), col("street"), col("suffix")).alias("Address 1"),
        pl.when(col("address2") == "").then(None).otherwise(col("address2")).alias("Address 2"),
        col("city").alias("City"),
        state.alias("State"),
        zip_code.alias("ZIP"),
    )


def _cases(layout: Layout, rows: int, contact_last: pl.Series, dice: _Dice) -> pl.DataFrame:
    """One row per case (= per export row)."""
    types = dice.draw(
        pl.DataFrame(
            {
                "canonical": [t[0] for t in layout.case_types],
                "written": [t[1] for t in layout.case_types],
                "weight": [t[2] for t in layout.case_types],
            }
        ),
        rows,
    )
    col = pl.col
    frame = pl.DataFrame(
        {
            "index": pl.int_range(1, rows + 1, eager=True).cast(pl.String).str.zfill(7),
            "canonical": types["canonical"],
            "written": types["written"],
            "status": dice.draw_values(layout.case_statuses, rows),
            "year": (dice.ints(rows, 10) + 2016).cast(pl.String),
            "defendant": pl.Series(DEFENDANTS).gather(dice.ints(rows, len(DEFENDANTS))),
            "last": contact_last,
            "incident": _dates(dice, rows, dt.date(2015, 1, 1), dt.date(2025, 6, 30), layout),
            "description": dice.draw_values(DESCRIPTIONS, rows),
        }
    )
    abbreviation = col("canonical").replace_strict(CASE_TYPE_ABBREVIATIONS, return_dtype=pl.String)
    last = col("last").str.strip_chars()
    return frame.select(
        pl.format("{}{}", pl.lit(layout.case_id_prefix), col("index")).alias("Case ID"),
        pl.format("{}-{}-{}", col("year"), abbreviation, col("index")).alias("Case Number"),
        pl.when(col("canonical") == "criminal")
        .then(pl.format("State v. {}", last))
        .otherwise(pl.format("{} v. {}", last, col("defendant")))
        .alias("Case Name"),
        col("written").alias("Case Type"),
        pl.when(col("status") == "").then(None).otherwise(col("status")).alias("Case Status"),
        col("incident").alias("Incident Date"),
        pl.when(col("description") == "")
        .then(None)
        .otherwise(col("description").str.replace_all("'", layout.apostrophe, literal=True))
        .alias("Description"),
    )


def _defect_positions(contact_index: pl.Series, count: int, dice: _Dice) -> list[int]:
    """`count` row indexes of single-case contacts, never adjacent, spread over the file.

    Defects go to contacts with one case so a broken contact field cannot also make a sibling row
    conflict; keeping them apart means a duplicate or conflicting row's partner (the row above)
    is always a clean row.
    """
    if count == 0:
        return []
    single = (contact_index != contact_index.shift(1)) & (contact_index != contact_index.shift(-1))
    rows = pl.int_range(0, contact_index.len(), eager=True).filter(single.fill_null(False))
    candidates: list[int] = rows.filter(rows > 0).to_list()
    if not candidates:
        return []
    step = len(candidates) / count
    chosen: list[int] = []
    for k in range(count):
        position = candidates[min(len(candidates) - 1, int(k * step + dice.unit() * step / 2))]
        if not chosen or position > chosen[-1] + 1:
            chosen.append(position)
    return chosen


def build_frame(
    layout: Layout, rows: int, *, seed: int = 0, defect_rate: float = 0.02, ragged: bool = False
) -> tuple[pl.DataFrame, int, dict[str, tuple[int, ...]]]:
    """The export as a frame of text (None = empty cell), its contact count, and its defects."""
    dice = _Dice(seed)
    # About one contact in six has two or more cases; their rows are adjacent, as CRMs export them.
    continues = (dice.ints(rows, 100) < 17).scatter(0, False)
    contact_index = (~continues).cast(pl.Int64).cum_sum() - 1
    contacts_count = int(contact_index[-1]) + 1  # the index only grows
    contacts = _contacts(layout, contacts_count, dice).select(pl.all().gather(contact_index))
    contact_id = pl.format(
        "{}{}", pl.lit(layout.contact_id_prefix), (pl.lit(contact_index) + 1).cast(pl.String).str.zfill(6)
    )
    cases = _cases(layout, rows, contacts["Last Name"], dice)
    frame = pl.concat([pl.select(contact_id.alias("Contact ID")), contacts, cases], how="horizontal")
    frame = frame.select(GENERIC_HEADERS)

    kinds = DEFECT_KINDS if ragged else DEFECT_KINDS[:-1]
    positions = _defect_positions(contact_index, round(rows * defect_rate), dice)
    by_kind: dict[str, list[int]] = {kind: [] for kind in kinds}
    for k, position in enumerate(positions):
        by_kind[kinds[k % len(kinds)]].append(position)
    frame = _apply_defects(frame, by_kind, layout)
    frame = _to_layout(frame, layout)
    defects = {kind: tuple(p + 2 for p in found) for kind, found in by_kind.items() if found}
    return frame, contacts_count, defects


def _apply_defects(frame: pl.DataFrame, by_kind: dict[str, list[int]], layout: Layout) -> pl.DataFrame:
    columns = {name: frame[name] for name in frame.columns}

    def put(column: str, positions: list[int], pool: Sequence[str | None]) -> None:
        if positions:
            values = [pool[i % len(pool)] for i in range(len(positions))]
            columns[column] = columns[column].scatter(positions, pl.Series(values, dtype=pl.String))

    def copy_from_row_above(column: str, positions: list[int]) -> None:
        if positions:
            above = columns[column].gather([p - 1 for p in positions])
            columns[column] = columns[column].scatter(positions, above)

    put("Mobile Phone", by_kind.get("invalid_phone", []), INVALID_PHONES)
    put("Date of Birth", by_kind.get("impossible_date", []), layout.impossible_dates)
    put("Date of Birth", by_kind.get("future_birth_date", []), layout.future_birth_dates)
    put("Date of Birth", by_kind.get("pre1900_birth_date", []), layout.pre1900_birth_dates)
    put("Email", by_kind.get("malformed_email", []), MALFORMED_EMAILS)
    put("State", by_kind.get("unknown_state", []), UNKNOWN_STATES)
    put("ZIP", by_kind.get("bad_zip", []), BAD_ZIPS)
    put("First Name", by_kind.get("missing_first_name", []), [None])
    put("Last Name", by_kind.get("missing_last_name", []), [None])
    put("Case Type", by_kind.get("unknown_case_type", []), layout.unknown_case_types)
    put("Case Status", by_kind.get("unknown_case_status", []), layout.unknown_case_statuses)
    copy_from_row_above("Case ID", by_kind.get("duplicate_case_id", []))
    copy_from_row_above("Contact ID", by_kind.get("conflicting_contact", []))
    put("Description", by_kind.get("formula_description", []), FORMULA_DESCRIPTIONS)
    several = by_kind.get("several_problems", [])
    put("Mobile Phone", several, ["12345"])
    put("Email", several, ["jose at example.com"])
    put("Last Name", several, [None])
    return pl.DataFrame(columns)


def _to_layout(frame: pl.DataFrame, layout: Layout) -> pl.DataFrame:
    """Rename the generic columns to the layout's headers (a layout may drop Address 2)."""
    if layout.headers == GENERIC_HEADERS:
        return frame
    # LegalEdge order: Client No; Surname; Given Name; … — surname before given name, no Address 2.
    order = (
        "Contact ID", "Last Name", "First Name", "Email", "Mobile Phone", "Date of Birth", "Address 1",
        "City", "State", "ZIP", "Case ID", "Case Number", "Case Name", "Case Type", "Case Status",
        "Incident Date", "Description",
    )  # fmt: skip
    assert len(order) == len(layout.headers)
    return frame.select(
        pl.col(source).alias(target) for source, target in zip(order, layout.headers, strict=True)
    )


# --------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------


def _write_csv(frame: pl.DataFrame, path: Path, layout: Layout, ragged_positions: list[int]) -> None:
    """Write the frame as the layout's CSV; ragged positions become records cut after 7 fields."""

    def segment(part: pl.DataFrame, header: bool) -> bytes:
        text = part.write_csv(
            separator=layout.delimiter, line_terminator=layout.line_terminator, include_header=header
        )
        return text.encode(layout.encoding)

    with path.open("wb") as out:
        start, header = 0, True
        for position in sorted(ragged_positions):
            out.write(segment(frame.slice(start, position - start), header))
            header = False
            buffer = io.StringIO()
            writer = csv.writer(buffer, delimiter=layout.delimiter, lineterminator=layout.line_terminator)
            kept = frame.row(position)[:RAGGED_KEEP_COLUMNS]
            writer.writerow(["" if value is None else value for value in kept])
            out.write(buffer.getvalue().encode(layout.encoding))
            start = position + 1
        out.write(segment(frame.slice(start), header))


_DATE_HEADERS = {"Date of Birth", "Incident Date", "DOB", "Date Opened"}
_PHONE_HEADERS = {"Mobile Phone", "Cell"}
_ZIP_HEADERS = {"ZIP", "Postcode"}


def _typed_cell(header: str, value: str | None, layout: Layout) -> object:
    """What a CRM would have stored: phones and 5-digit ZIPs as numbers, real dates as date cells."""
    if value is None:
        return None
    if header in _PHONE_HEADERS:
        digits = "".join(ch for ch in value if ch.isdigit())
        if "+" not in value and len(digits) == 10 and all(ch.isdigit() or ch in " ().-" for ch in value):
            return int(digits)
    elif header in _ZIP_HEADERS:
        if len(value) == 5 and value.isdigit():
            return int(value)  # the leading zero is lost, as in a real spreadsheet
    elif header in _DATE_HEADERS:
        patterns = (
            ("%Y-%m-%d", "%d/%m/%Y") if layout.excel_date_format.startswith("d") else ("%Y-%m-%d", "%m/%d/%Y")
        )
        for pattern in patterns:
            try:
                day = dt.datetime.strptime(value, pattern).date()
            except ValueError:
                continue
            return day if day.year >= 1900 else value  # Excel has no dates before 1900
    return value


def _write_xlsx(frame: pl.DataFrame, path: Path, layout: Layout, ragged_positions: list[int]) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Leads")
    sheet.append(list(frame.columns))
    cut = set(ragged_positions)
    for index, row in enumerate(frame.iter_rows()):
        cells: list[object] = []
        for position, (header, value) in enumerate(zip(frame.columns, row, strict=True)):
            if index in cut and position >= RAGGED_KEEP_COLUMNS:
                cells.append(None)
                continue
            typed = _typed_cell(header, value, layout)
            if isinstance(typed, dt.date):
                cell = WriteOnlyCell(sheet, value=typed)
                cell.number_format = layout.excel_date_format
                cells.append(cell)
            elif isinstance(typed, str) and typed.startswith("="):
                cell = WriteOnlyCell(sheet, value=typed)
                cell.data_type = "s"  # text that looks like a formula, as a CRM would store it
                cells.append(cell)
            else:
                cells.append(typed)
        sheet.append(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    path.write_bytes(_reproducible_zip(buffer.getvalue()))


_FIXED_TIMESTAMP = "2026-01-01T00:00:00Z"


def _reproducible_zip(data: bytes) -> bytes:
    """The same workbook bytes on every run: openpyxl stamps the save time into the zip and core.xml."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "docProps/core.xml":
                content = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", _FIXED_TIMESTAMP.encode(), content)
            info = zipfile.ZipInfo(item.filename, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, content)
    return out.getvalue()
