"""Reading a leads file (CSV or XLSX), guessing which column is which, and turning one row into the
values :meth:`~prosaas_common.leads.writer.LeadWriter.upsert` takes.

Pure functions, shared by the api (upload, preview) and the worker (the import job), so a preview and
the real run judge every row the same way. Row numbers are the file's own: the header is row 1 of a
one-line-per-record CSV or of the spreadsheet, blank rows keep their number and are skipped.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Generator, Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from prosaas_common.leads.values import (
    InvalidLeadValue,
    clean_tags,
    email_or_none,
    phone_or_none,
    split_name,
)

MAX_ROWS = 50_000
MAX_BYTES = 10 * 1024 * 1024
MAX_COLUMNS = 200
MAX_XLSX_EXPANDED = 256 * 1024 * 1024
PREVIEW_ROWS = 50
DELIMITERS = (",", ";", "\t")
IGNORE = "ignore"
CUSTOM_PREFIX = "fields."
DEFAULT_SOURCE = "import"
# Targets a column may map to, besides ``fields.<name>`` and ``ignore``.
LEAD_TARGETS = (
    "first_name",
    "last_name",
    "name",
    "phone",
    "email",
    "company",
    "source",
    "tags",
    "reason",
    "status",
)
MAX_LENGTH = {
    "first_name": 100,
    "last_name": 100,
    "company": 200,
    "source": 50,
    "reason": 5000,
    "custom": 1000,
}
MAX_TAGS = 30
TAG_SEPARATORS = re.compile(r"[,;|]")

# Normalised header (lower-case letters and digits only) → target.
SYNONYMS: dict[str, str] = {
    **dict.fromkeys(("firstname", "first", "givenname", "fname", "forename"), "first_name"),
    **dict.fromkeys(("lastname", "last", "surname", "familyname", "lname"), "last_name"),
    **dict.fromkeys(
        ("name", "fullname", "contact", "contactname", "customer", "customername", "leadname"), "name"
    ),
    **dict.fromkeys(
        (
            "phone",
            "phonenumber",
            "phoneno",
            "mobile",
            "mobilephone",
            "mobilenumber",
            "cell",
            "cellphone",
            "telephone",
            "tel",
            "whatsapp",
        ),
        "phone",
    ),
    **dict.fromkeys(("email", "emailaddress", "mail"), "email"),
    **dict.fromkeys(
        ("company", "companyname", "organization", "organisation", "business", "businessname"), "company"
    ),
    **dict.fromkeys(("source", "leadsource", "channel", "origin"), "source"),
    **dict.fromkeys(("tags", "tag", "labels", "label"), "tags"),
    **dict.fromkeys(
        (
            "reason",
            "notes",
            "note",
            "message",
            "comment",
            "comments",
            "description",
            "inquiry",
            "enquiry",
            "details",
            "interest",
        ),
        "reason",
    ),
    **dict.fromkeys(("status", "stage", "leadstatus", "pipelinestage"), "status"),
}


class ImportFileError(ValueError):
    """The file cannot be read as a leads table; the message says why (shown to the user)."""


class MappingError(ValueError):
    """A mapping that does not fit the file: ``problems`` maps the column (or ``""``) to the message."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{column}: {message}" for column, message in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class DataRow:
    number: int  # as in the file (the header is row 1)
    cells: tuple[str, ...]


@dataclass(frozen=True)
class ParsedFile:
    file_format: str  # csv, xlsx
    columns: list[str]
    rows: list[DataRow]

    def preview(self, count: int) -> list[dict[str, str]]:
        return [dict(zip(self.columns, row.cells, strict=True)) for row in self.rows[:count]]


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass
class RowResult:
    row: int
    values: dict[str, Any] = field(default_factory=dict)
    status_id: int | None = None  # only when the row names a status
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


# reading -----------------------------------------------------------------------------------------
def detect_format(filename: str, content: bytes) -> str:
    """``xlsx`` for a zip container (whatever the name says), else ``csv``; old ``.xls`` is refused."""
    if content.startswith(b"PK\x03\x04"):
        return "xlsx"
    if content.startswith(b"\xd0\xcf\x11\xe0") or filename.lower().endswith(".xls"):
        raise ImportFileError("old Excel (.xls) files are not supported: save the sheet as .xlsx or CSV")
    return "csv"


def parse_file(
    content: bytes, filename: str = "", *, max_rows: int = MAX_ROWS, first: int | None = None
) -> ParsedFile:
    """Columns and non-blank data rows of ``content``; ImportFileError when it cannot be read, is
    empty, or has more than ``max_rows`` data rows. ``first`` stops reading after that many rows."""
    if not content.strip():
        raise ImportFileError("the file is empty")
    file_format = detect_format(filename, content)
    header: list[str] | None = None
    rows: list[DataRow] = []
    with closing(_xlsx_rows(content) if file_format == "xlsx" else _csv_rows(content)) as raw:
        for number, cells in raw:
            if not any(cells):
                continue
            if header is None:
                header = unique_columns(cells)
                continue
            if first is not None and len(rows) >= first:
                break
            if len(rows) >= max_rows:
                raise ImportFileError(
                    f"the file has more than {max_rows:,} rows; split it into smaller files"
                )
            padded = (cells + [""] * len(header))[: len(header)]
            rows.append(DataRow(number, tuple(padded)))
    if header is None:
        raise ImportFileError("the file has no header row")
    return ParsedFile(file_format, header, rows)


def unique_columns(cells: list[str]) -> list[str]:
    """Header names, trimmed; blank ones named ``column N``, repeated ones suffixed `` (2)``, …"""
    if len(cells) > MAX_COLUMNS:
        raise ImportFileError(f"the file has more than {MAX_COLUMNS} columns")
    while cells and not cells[-1]:
        cells = cells[:-1]
    names: list[str] = []
    for index, cell in enumerate(cells, start=1):
        base = " ".join(cell.split())[:100] or f"column {index}"
        name, copy = base, 1
        while name in names:
            copy += 1
            name = f"{base} ({copy})"
        names.append(name)
    return names


def _csv_rows(content: bytes) -> Generator[tuple[int, list[str]], None, None]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError(
            "the file is neither an .xlsx workbook nor UTF-8 CSV text (save it as 'CSV UTF-8')"
        ) from None
    if "\x00" in text:
        raise ImportFileError("the file is neither an .xlsx workbook nor CSV text")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text), strict=False)
    try:
        previous = 0
        for record in reader:
            yield previous + 1, [cell.strip() for cell in record]
            previous = reader.line_num
    except csv.Error as exc:
        raise ImportFileError(f"the CSV file cannot be read near line {reader.line_num}: {exc}") from None


def sniff_delimiter(text: str) -> str:
    """``,``, ``;`` or tab: the one that splits the first lines into the same number of cells (> 1)."""
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        widths = [len(record) for record in csv.reader(lines, delimiter=delimiter)]
        if not widths or widths[0] < 2:
            continue
        score = (sum(width == widths[0] for width in widths), widths[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def cell_text(value: object) -> str:
    """A spreadsheet cell as the text a person sees: whole numbers without ``.0`` (phones!), dates ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value).replace("\x00", "").strip()  # Postgres text cannot hold NUL


def _check_archive(content: bytes) -> None:
    """Refuse what is not a zip, and a zip that unpacks to more than MAX_XLSX_EXPANDED (a zip bomb)."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ImportFileError("the .xlsx workbook cannot be read (not a zip archive)") from None
    if expanded > MAX_XLSX_EXPANDED:
        raise ImportFileError(f"the .xlsx workbook unpacks to more than {MAX_XLSX_EXPANDED // 2**20} MiB")


def _xlsx_rows(content: bytes) -> Generator[tuple[int, list[str]], None, None]:
    _check_archive(content)
    from openpyxl import load_workbook  # imported on use: only XLSX uploads need it

    # Any error of the parser on an uploaded file is the file's fault: say so, never fail with a 500.
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:
        raise ImportFileError(f"the .xlsx workbook cannot be read ({type(exc).__name__})") from None
    try:
        if not workbook.worksheets:
            raise ImportFileError("the workbook has no sheet")
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        number = 0
        while True:
            try:
                values = next(rows, None)
            except Exception as exc:
                raise ImportFileError(
                    f"the .xlsx workbook cannot be read after row {number} ({type(exc).__name__})"
                ) from None
            if values is None:
                return
            number += 1
            yield number, [cell_text(value) for value in values[: MAX_COLUMNS + 1]]
    finally:
        workbook.close()


# mapping -----------------------------------------------------------------------------------------
def normalise_header(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def guess_mapping(columns: Iterable[str]) -> dict[str, str]:
    """Column → target by its header (``E-mail`` → email, ``Mobile`` → phone …); each lead field is
    taken by the first column that names it, the rest are ``ignore``."""
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for column in columns:
        target = SYNONYMS.get(normalise_header(column), IGNORE)
        if target in taken:
            target = IGNORE
        if target != IGNORE:
            taken.add(target)
        mapping[column] = target
    return mapping


def check_mapping(mapping: Mapping[str, str], columns: list[str]) -> dict[str, str]:
    """The mapping for every column (unmapped ones ``ignore``); MappingError on an unknown column, an
    unknown target or a target used twice."""
    problems: dict[str, str] = {}
    known = set(columns)
    for column in mapping:
        if column not in known:
            problems[column] = "the file has no such column"
    full: dict[str, str] = {}
    used: dict[str, str] = {}
    for column in columns:
        target = str(mapping.get(column, IGNORE)).strip() or IGNORE
        if target.startswith(CUSTOM_PREFIX):
            name = target[len(CUSTOM_PREFIX) :].strip()
            if not 1 <= len(name) <= 100:
                problems[column] = "custom field names are 1-100 characters"
                continue
            target = CUSTOM_PREFIX + name
        elif target != IGNORE and target not in LEAD_TARGETS:
            choices = ", ".join(LEAD_TARGETS)
            problems[column] = f"unknown target {target!r} (choose {choices}, fields.<name> or ignore)"
            continue
        if target != IGNORE and target in used:
            problems[column] = f"{target} is already mapped from column {used[target]!r}"
            continue
        used.setdefault(target, column)
        full[column] = target
    if problems:
        raise MappingError(problems)
    return full


# rows --------------------------------------------------------------------------------------------
class StatusLookup:
    """A business's statuses by key or name, whatever the case and spacing (``Contacted``, ``contacted``)."""

    def __init__(self, statuses: Iterable[tuple[int, str, str]]) -> None:
        self._by_text: dict[str, int] = {}
        for status_id, key, name in statuses:
            self._by_text.setdefault(self._normal(name), status_id)
            self._by_text[self._normal(key)] = status_id

    @staticmethod
    def _normal(text: str) -> str:
        return re.sub(r"[\s_-]+", " ", text.strip().lower())

    def find(self, text: str) -> int | None:
        return self._by_text.get(self._normal(text))


def _limited(target: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidLeadValue(target, f"longer than {limit} characters")
    return value


def row_values(
    row: DataRow,
    columns: list[str],
    mapping: Mapping[str, str],
    *,
    region: str,
    statuses: StatusLookup,
) -> RowResult:
    """Normalise one row with a checked mapping; every bad cell becomes a RowError (the row is then
    skipped by the import). A row needs a name, a phone or an e-mail."""
    result = RowResult(row.number)
    values: dict[str, Any] = {}
    custom: dict[str, str] = {}
    name = ""
    for column, cell in zip(columns, row.cells, strict=True):
        target = mapping.get(column, IGNORE)
        if target == IGNORE or not cell:
            continue
        try:
            if target == "phone":
                values["phone"] = phone_or_none(cell, region)
            elif target == "email":
                values["email"] = email_or_none(cell)
            elif target == "name":
                name = cell
            elif target == "tags":
                tags = clean_tags(TAG_SEPARATORS.split(cell))
                if len(tags) > MAX_TAGS:
                    raise InvalidLeadValue("tags", f"more than {MAX_TAGS} tags")
                values["tags"] = tags
            elif target == "status":
                status_id = statuses.find(cell)
                if status_id is None:
                    raise InvalidLeadValue("status", f"no status is called {cell!r}")
                result.status_id = status_id
            elif target.startswith(CUSTOM_PREFIX):
                custom[target[len(CUSTOM_PREFIX) :]] = _limited(target, cell, MAX_LENGTH["custom"])
            else:
                values[target] = _limited(target, cell, MAX_LENGTH[target])
        except InvalidLeadValue as exc:
            result.errors.append(RowError(row.number, target, exc.message))
    if name:
        first, last = split_name(name)
        values.setdefault("first_name", first[: MAX_LENGTH["first_name"]])
        values.setdefault("last_name", last[: MAX_LENGTH["last_name"]])
    if custom:
        values["fields"] = custom
    values.setdefault("source", DEFAULT_SOURCE)
    identity = ("phone", "email", "first_name", "last_name")
    if not result.errors and not any(values.get(key) for key in identity):
        result.errors.append(RowError(row.number, "row", "the row has no name, phone or e-mail"))
    result.values = values
    return result
