"""annotated.xlsx: the source rows as read, with every problem cell marked and explained.

A paralegal fixes a spreadsheet, not a list of row numbers: this workbook shows the rows as they
were read (every original column, in source order, the row number a person sees in the source
in the first column), marks each cell at fault three ways (a red fill, a dashed border and bold
text, so it reads without colour too), gives the reason in an Excel comment on that cell (the
first MAX_COMMENTS of them), and leaves the rows that load untouched. A Problems sheet lists every
problem with a link to its cell; a Summary sheet says how the file was read and what came of it.

The sheets are built as whole columns (polars) and written by xlsx_package, not cell by cell,
and every text cell goes through the same formula neutralizing as the CSV reports.
Above ALL_ROWS_UP_TO rows, only the rejected rows are shown.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.model import SOURCE_FILE, SOURCE_ROW, ValidationResult, problem
from pipeline.report.cells import neutralize_cell, neutralize_formulas
from pipeline.report.files import private_file
from pipeline.report.validation import (
    appended_names,
    in_source_order,
    summary,
)
from pipeline.report.xlsx_package import (
    BOLD,
    DEFAULT,
    LINK,
    PROBLEM,
    Package,
    Sheet,
    column_letter,
    data_rows,
    row_xml,
)

ROWS_SHEET = "Rows"
PROBLEMS_SHEET = "Problems"
SUMMARY_SHEET = "Summary"
AUTHOR = "kayse-etl"

EXCEL_MAX_ROWS = 1_048_576
ALL_ROWS_UP_TO = 50_000
"""A source with more rows gets only its rejected rows in the Rows sheet (said on the Summary
sheet): nobody fixes a million-row sheet by hand, and the CSV reports hold every row."""
MAX_SHEET_ROWS = ALL_ROWS_UP_TO
"""At most this many rows in the Rows and in the Problems sheet (the first ones, in row order)."""
MAX_COMMENTS = 2_000
"""Only the first this many problem cells (in row order) get a comment with their reason: a
sheet thick with pop-ups helps nobody, and each is a legacy drawing shape as well. Every problem
cell is still marked, its row's `problems` column still names its codes, and the Problems sheet
gives every reason with a link (the Summary sheet says so)."""
EXCEL_MAX_CELL_CHARS = 32_767
MIN_WIDTH, MAX_WIDTH = 6, 50
NOT_SHOWN = "(not in the Rows sheet)"

# Characters the xlsx format cannot hold at all: control characters but tab and line ends, and
# the two XML excludes (U+FFFE, U+FFFF).
_ILLEGAL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]"
_ILLEGAL_CHARS = re.compile(_ILLEGAL)
REPLACEMENT = "\ufffd"


def write_annotated_workbook(
    result: ValidationResult, path: Path, report: dict[str, Any] | None = None
) -> Path:
    """Write annotated.xlsx (0600, whole or not at all) and return its path. `report`: the
    result's summary() when the caller has it already."""
    with private_file(path) as temp:
        _Workbook(result, report if report is not None else summary(result)).save(temp)
    return path


def _text(value: str) -> str:
    """A text the xlsx format can hold, formula-safe (values are otherwise left as read)."""
    value = _ILLEGAL_CHARS.sub(REPLACEMENT, neutralize_cell(value))
    return value if len(value) <= EXCEL_MAX_CELL_CHARS else value[: EXCEL_MAX_CELL_CHARS - 1] + "…"


def _compact(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with its texts copied into buffers of their own: the rows picked out of a large
    source still point into the whole source's text buffers, where every text operation after
    (neutralizing, building the sheet) runs some three times slower."""
    texts = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(pl.concat_str(pl.col(name), pl.lit("")).alias(name) for name in texts)


def _storable(frame: pl.DataFrame, *, cut_marked: bool = False) -> pl.DataFrame:
    """Every text column formula-safe (as the CSV reports), then cut to what a cell can hold;
    `cut_marked`: a cut text ends in an ellipsis, as _text does."""
    safe = neutralize_formulas(frame)
    text = [name for name, dtype in safe.schema.items() if dtype == pl.String]
    # neutralizing has escaped the control characters already: of _ILLEGAL, only the two XML
    # excludes can be left (a plain search for them is much faster); a text of no more bytes
    # than a cell's characters fits
    flagged = safe.select(
        (
            pl.col(name).str.contains("\ufffe", literal=True)
            | pl.col(name).str.contains("\uffff", literal=True)
            | (pl.col(name).str.len_bytes() > EXCEL_MAX_CELL_CHARS)
        )
        .any()
        .alias(name)
        for name in text
    )
    fix = [name for name in text if flagged.get_column(name)[0]]
    return safe.with_columns(
        _cut(pl.col(name).str.replace_all(_ILLEGAL, REPLACEMENT), cut_marked).alias(name) for name in fix
    )


def _cut(text: pl.Expr, marked: bool) -> pl.Expr:
    if not marked:
        return text.str.slice(0, EXCEL_MAX_CELL_CHARS)
    too_long = text.str.len_chars() > EXCEL_MAX_CELL_CHARS
    return pl.when(too_long).then(text.str.slice(0, EXCEL_MAX_CELL_CHARS - 1) + "…").otherwise(text)


def _reason(problems: pl.DataFrame) -> pl.Expr:
    """A problem's words: its message, or its code's title when it has none."""
    titles = {code: problem(code).title for code in problems.get_column("code").unique().to_list()}
    unset = pl.col("message").is_null() | (pl.col("message") == "")
    return pl.when(unset).then(pl.col("code").replace_strict(titles)).otherwise(pl.col("message"))


_CELL = ["__sheet_row", "__column"]  # a cell of the Rows sheet: its row, its 0-based column


class _Workbook:
    """The three sheets, built from one ValidationResult."""

    def __init__(self, result: ValidationResult, report: dict[str, Any]) -> None:
        self.result = result
        self.report = report
        rows = result.source_rows if result.source_rows.width else result.rejected_rows
        rows = rows.with_columns(pl.col(SOURCE_ROW).cast(pl.Int64))
        self.value_columns = [name for name in rows.columns if name not in (SOURCE_FILE, SOURCE_ROW)]
        self.several_files = len(result.sources) > 1 or bool(
            rows.select((pl.col(SOURCE_FILE) != pl.col(SOURCE_FILE).first()).any()).item()
        )
        self.only_rejected = rows.height > ALL_ROWS_UP_TO
        if self.only_rejected:
            keys = result.rejects.select(SOURCE_FILE, pl.col(SOURCE_ROW).cast(pl.Int64)).unique()
            # a cheap first cut by row number, then the exact one by file and row
            rows = rows.filter(pl.col(SOURCE_ROW).is_in(keys.get_column(SOURCE_ROW).implode()))
            rows = rows.join(keys, on=[SOURCE_FILE, SOURCE_ROW], how="semi", maintain_order="left")
        if self.several_files or not rows.get_column(SOURCE_ROW).is_sorted():
            rows = in_source_order(rows, result)
        self.listed = rows.height
        self.shown = min(rows.height, MAX_SHEET_ROWS)
        self.rows = _compact(rows.head(self.shown))
        names = appended_names(self.value_columns, ("row", "source_file", "problems"))
        self.lead = [names["row"]] + ([names["source_file"]] if self.several_files else [])
        self.header = [*self.lead, *self.value_columns, names["problems"]]
        self.column_of = {name: len(self.lead) + i for i, name in enumerate(self.value_columns)}
        # the sheet row of every row shown (header = row 1)
        self.sheet_rows = self.rows.select(
            SOURCE_FILE, SOURCE_ROW, pl.int_range(2, self.shown + 2, dtype=pl.Int64).alias("__sheet_row")
        )
        self.problems_cut = 0  # problems in all, when the Problems sheet shows only the first ones
        self.commented = 0  # problem cells given a comment
        self.problem_cells = 0  # problem cells marked in the Rows sheet

    def save(self, path: Path) -> None:
        with Package(path, AUTHOR) as package:
            package.add(self._rows_sheet())
            package.add(self._problems_sheet())
            package.add(self._summary_sheet())  # last: it tells what the others left out

    # ---- the rows as read -------------------------------------------------------------

    def _widths(self) -> list[float]:
        lengths = (
            self.rows.select(pl.col(name).str.len_chars().max().alias(name) for name in self.value_columns)
            if self.value_columns and self.rows.height
            else None
        )
        widths = [8.0] + ([16.0] if self.several_files else [])
        for name in self.value_columns:
            longest = (lengths.get_column(name)[0] if lengths is not None else None) or 0
            widths.append(float(max(MIN_WIDTH, min(MAX_WIDTH, max(len(name), longest) + 2))))
        widths.append(30.0)
        return widths

    def _rows_sheet(self) -> Sheet:
        """Every row shown as read; a rejected row's number in bold, each problem cell marked
        (the first MAX_COMMENTS with a comment), the row's codes in the last column."""
        problems = self._shown_problems()
        codes = (
            problems.group_by("__sheet_row", maintain_order=True)
            .agg(pl.col("code").unique(maintain_order=True).str.join(", ").alias("__codes"))
            .sort("__sheet_row")
        )
        marked = problems.select(_CELL).unique(maintain_order=True).sort("__sheet_row", maintain_order=True)
        columns = [self.rows.get_column(SOURCE_ROW)]
        if self.several_files:
            columns.append(self.rows.get_column(SOURCE_FILE))
        if self.value_columns:
            columns += _storable(self.rows.select(self.value_columns)).iter_columns()
        codes_column = self.sheet_rows.join(codes, on="__sheet_row", how="left", maintain_order="left")
        columns.append(codes_column.get_column("__codes"))
        cells = pl.DataFrame({f"c{index}": column for index, column in enumerate(columns)})
        looks: dict[str, int | pl.Series] = {}
        rejected_rows = codes.get_column("__sheet_row") - 2
        if rejected_rows.len():  # a rejected row: its number stands out
            looks["c0"] = pl.zeros(self.shown, pl.UInt8, eager=True).scatter(rejected_rows, BOLD)
        for (at,), rows in marked.select("__column", pl.col("__sheet_row") - 2).group_by("__column"):
            look = looks.get(f"c{at}", pl.zeros(self.shown, pl.UInt8, eager=True))
            assert isinstance(look, pl.Series)
            looks[f"c{at}"] = look.scatter(rows.get_column("__sheet_row"), PROBLEM)
        comments = self._comments(problems, marked.head(MAX_COMMENTS))
        self.problem_cells, self.commented = marked.height, len(comments)
        header = row_xml(1, [_text(name) for name in self.header], BOLD)
        return Sheet(
            ROWS_SHEET,
            [header.encode(), *data_rows(cells, looks, first_row=2)],
            widths=self._widths(),
            freeze=f"{column_letter(len(self.lead) + 1)}2",
            auto_filter=f"A1:{column_letter(len(self.header))}{self.shown + 1}",
            comments=comments,
        )

    def _shown_problems(self) -> pl.DataFrame:
        """The rejections of the rows shown, as found, with their cell in the Rows sheet: sheet
        row and 0-based column (a problem of no column: the row's first cell)."""
        rejects = self.result.rejects.with_columns(pl.col(SOURCE_ROW).cast(pl.Int64))
        column = (
            pl.col("field").fill_null("").replace_strict(self.column_of, default=0, return_dtype=pl.Int64)
        )
        return rejects.join(
            self.sheet_rows, on=[SOURCE_FILE, SOURCE_ROW], how="inner", maintain_order="left"
        ).with_columns(column.alias("__column"))

    @staticmethod
    def _comments(problems: pl.DataFrame, cells: pl.DataFrame) -> list[tuple[int, int, str]]:
        """(sheet row, 1-based column, text) for each of `cells`: the reasons of its problems."""
        reason = pl.concat_str(_reason(problems), pl.lit(" ["), pl.col("code"), pl.lit("]"))
        reasons = (
            problems.join(cells, on=_CELL, how="semi", maintain_order="left")
            .group_by(_CELL, maintain_order=True)
            .agg(reason.str.join("\n").alias("__reasons"))
        )
        texts = _storable(cells.join(reasons, on=_CELL, how="left", maintain_order="left"), cut_marked=True)
        texts = texts.select("__sheet_row", pl.col("__column") + 1, "__reasons")
        return list(texts.iter_rows())

    # ---- every problem, with a link to its cell -------------------------------------------

    def _problems_sheet(self) -> Sheet:
        """One line per problem (the first MAX_SHEET_ROWS), each with a link to its cell."""
        listed = self._listed_problems()
        if listed.height > MAX_SHEET_ROWS:
            self.problems_cut = listed.height
        header = ["row", *(["source_file"] if self.several_files else []), "column", "value"]
        header += ["code", "reason", "kind", "cell"]
        auto_filter = f"A1:{column_letter(len(header))}{listed.height + 1}"
        listed = _compact(listed.head(MAX_SHEET_ROWS))
        texts = _storable(
            listed.select(pl.col("field"), pl.col("value"), _reason(listed).alias("reason")),
            cut_marked=True,
        )
        letters = {name: column_letter(at + 1) for name, at in self.column_of.items()}
        target = pl.concat_str(  # the problem's cell in the Rows sheet; null when its row is not there
            pl.col("field").fill_null("").replace_strict(letters, default="A", return_dtype=pl.String),
            pl.col("__sheet_row").cast(pl.String),
        )
        targets = listed.select(target).to_series()
        whole_row = pl.col("field").is_null() | (pl.col("field") == "")
        columns = [
            listed.get_column(SOURCE_ROW),
            *([listed.get_column(SOURCE_FILE)] if self.several_files else []),
            texts.select(pl.when(whole_row).then(pl.lit("(whole row)")).otherwise("field")).to_series(),
            texts.get_column("value"),
            listed.get_column("code"),
            texts.get_column("reason"),
            listed.get_column("kind"),
            pl.select(
                pl.when(targets.is_null()).then(pl.lit(NOT_SHOWN)).otherwise(ROWS_SHEET + "!" + targets)
            ).to_series(),
        ]
        cells = pl.DataFrame({f"c{index}": column for index, column in enumerate(columns)})
        link_column = column_letter(len(header))
        links = pl.select(
            pl.format(f"{link_column}{{}}", pl.int_range(2, targets.len() + 2)).alias("cell"),
            pl.format(f"'{ROWS_SHEET}'!{{}}", targets).alias("location"),
        ).drop_nulls()
        return Sheet(
            PROBLEMS_SHEET,
            [
                row_xml(1, header, BOLD).encode(),
                *data_rows(cells, {f"c{len(columns) - 1}": targets.is_not_null().cast(pl.UInt8) * LINK}, 2),
            ],
            widths=[8, *([14] if self.several_files else []), 22, 28, 22, 60, 22, 12],
            freeze="A2",
            auto_filter=auto_filter,
            links=links,
        )

    def _listed_problems(self) -> pl.DataFrame:
        """Every rejection and warning with its row's sheet row (null if not shown), in sheet
        order: by row, a row's rejections before its warnings, each kind in the order found;
        problems of rows not shown last, rejections first, grouped by row as first found."""
        kinds = (("rejected", self.result.rejects), ("warning (row still loads)", self.result.warnings))
        found = pl.concat(
            [
                frame.select(
                    pl.col(SOURCE_FILE),
                    pl.col(SOURCE_ROW).cast(pl.Int64),
                    "field",
                    "value",
                    "code",
                    "message",
                    pl.lit(kind).alias("kind"),
                    pl.lit(rank, pl.UInt8).alias("__kind"),
                    pl.int_range(pl.len(), dtype=pl.Int64).alias("__order"),
                )
                for rank, (kind, frame) in enumerate(kinds)
            ]
        )
        return (
            found.with_columns(
                pl.col("__order").min().over(SOURCE_FILE, SOURCE_ROW, "__kind").alias("__first")
            )
            .join(self.sheet_rows, on=[SOURCE_FILE, SOURCE_ROW], how="left", maintain_order="left")
            .sort(pl.col("__sheet_row").fill_null(EXCEL_MAX_ROWS), "__kind", "__first", "__order")
        )

    # ---- how the file was read, and what came of it ---------------------------------------

    def _summary_sheet(self) -> Sheet:
        data = self.report
        lines: list[list[Any]] = []
        for source in data["sources"]:
            lines.append(["File read as", _text(source["detected"])])
            lines += [["", _text(f"note: {note}")] for note in source["notes"]]
        lines.append(["Mapping", _text(f"{data['mapping']['name']} ({data['mapping']['path']})")])
        lines += [
            ["Rows read", data["rows_read"]],
            ["Rows ready to send", data["rows_valid"]],
            ["Rows rejected", data["rows_rejected"]],
            ["Clients (contacts)", data["clients"]],
            ["Cases", data["cases"]],
        ]
        if self.only_rejected:
            lines.append(
                [
                    "Note",
                    f"the file has more than {ALL_ROWS_UP_TO:,} rows: the Rows sheet shows only the "
                    f"rejected ones{'' if self.shown == self.listed else f' (the first {self.shown:,})'}; "
                    "clients.csv and cases.csv hold the rows that are sent",
                ]
            )
        elif self.shown < self.listed:
            lines.append(["Note", f"the Rows sheet shows the first {self.shown:,} rows"])
        if self.problems_cut:
            lines.append(
                [
                    "Note",
                    f"the Problems sheet lists the first {MAX_SHEET_ROWS:,} of {self.problems_cut:,} problems",
                ]
            )
        if self.commented < self.problem_cells:
            lines.append(
                [
                    "Note",
                    f"only the first {self.commented:,} of the {self.problem_cells:,} marked cells carry "
                    "a comment; the Problems sheet lists every problem with its reason and a link to "
                    "its cell, and each row's problems column names its codes",
                ]
            )
        lines.append(
            [
                "How to read",
                "In the Rows sheet, a cell at fault has a red fill, a dashed border and bold text; "
                "its comment says why. Rows with nothing marked are sent as they are.",
            ]
        )
        looks = [DEFAULT] * len(lines)
        tables = [(("Problem", "Rows", "What it means"), data["rows_by_code"])]
        if data["warning_rows_by_code"]:
            tables.append(
                (("Warning", "Rows", "What it means (rows still load)"), data["warning_rows_by_code"])
            )
        for head, counts in tables:
            lines += [[], list(head), *([code, rows, problem(code).title] for code, rows in counts.items())]
            looks += [DEFAULT, BOLD, *[DEFAULT] * len(counts)]
        xml = (
            row_xml(number, line, look)
            for number, (line, look) in enumerate(zip(lines, looks, strict=True), 1)
        )
        return Sheet(SUMMARY_SHEET, ["".join(xml).encode()], widths=[26, 16, 70])
