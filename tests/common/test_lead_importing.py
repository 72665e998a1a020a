"""Reading lead files (CSV dialects, XLSX), guessing the mapping and judging rows — pure functions."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import pytest
from openpyxl import Workbook

from prosaas_common.leads import importing
from prosaas_common.leads.importing import (
    DataRow,
    ImportFileError,
    MappingError,
    StatusLookup,
    check_mapping,
    guess_mapping,
    parse_file,
    row_values,
    sniff_delimiter,
)

STATUSES = StatusLookup([(1, "new", "New"), (2, "contacted", "Contacted"), (3, "won", "Closed won")])


def xlsx(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_delimiters_are_sniffed(delimiter: str) -> None:
    text = delimiter.join(["Name", "Phone", "Notes"]) + "\n"
    text += delimiter.join(["Ada Lovelace", "+1 555 010 2030", '"a, b; c"']) + "\n"
    parsed = parse_file(text.encode(), "leads.csv")
    assert parsed.file_format == "csv"
    assert parsed.columns == ["Name", "Phone", "Notes"]
    assert parsed.rows == [DataRow(2, ("Ada Lovelace", "+1 555 010 2030", "a, b; c"))]


def test_sniffing_prefers_the_delimiter_that_splits_every_line_alike() -> None:
    assert sniff_delimiter("a;b;c\n1,5;2;3\n4;5;6\n") == ";"
    assert sniff_delimiter("just one column\nvalue\n") == ","


def test_bom_blank_rows_and_row_numbers_as_in_the_file() -> None:
    content = "\ufeffphone,name\n\n+15550102030,Ada\n,\n+15550102031,Bob\n".encode()
    parsed = parse_file(content)
    assert parsed.columns == ["phone", "name"]  # the BOM is not part of the first header
    assert [(row.number, row.cells) for row in parsed.rows] == [
        (3, ("+15550102030", "Ada")),
        (5, ("+15550102031", "Bob")),
    ]


def test_short_rows_are_padded_and_blank_or_repeated_headers_named() -> None:
    parsed = parse_file(b"email,,email\na@example.com\n")
    assert parsed.columns == ["email", "column 2", "email (2)"]
    assert parsed.rows[0].cells == ("a@example.com", "", "")
    assert parsed.preview(5) == [{"email": "a@example.com", "column 2": "", "email (2)": ""}]


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (b"", "x.csv", "empty"),
        (b"  \n", "x.csv", "empty"),
        ("name\nJosé\n".encode("latin-1"), "x.csv", "UTF-8"),
        (b"\xd0\xcf\x11\xe0rest-of-ole", "x.xls", ".xls"),
        (b"PK\x03\x04 not really a zip", "x.xlsx", ".xlsx workbook cannot be read"),
        (b"\n\n", "x.csv", "empty"),
    ],
)
def test_unreadable_files_say_why(content: bytes, filename: str, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        parse_file(content, filename)


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def test_a_zip_that_is_no_workbook_or_unpacks_too_far_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ImportFileError, match="workbook cannot be read"):
        parse_file(zipped("readme.txt", b"hello"), "leads.xlsx")
    monkeypatch.setattr(importing, "MAX_XLSX_EXPANDED", 1024 * 1024)
    with pytest.raises(ImportFileError, match="unpacks to more than 1 MiB"):
        parse_file(zipped("xl/sharedStrings.xml", b"\0" * (2 * 1024 * 1024)), "leads.xlsx")
    # A real workbook under the limit still reads.
    assert parse_file(xlsx([["phone"], ["2125550100"]])).rows[0].cells == ("2125550100",)


def test_too_many_rows_are_refused_and_first_stops_early() -> None:
    content = b"phone\n" + b"".join(f"+1555010{i:04d}\n".encode() for i in range(4))
    with pytest.raises(ImportFileError, match="more than 3 rows"):
        parse_file(content, max_rows=3)
    assert len(parse_file(content, max_rows=4).rows) == 4
    assert len(parse_file(content, max_rows=3, first=2).rows) == 2


def test_xlsx_first_sheet_with_numbers_and_dates_as_text() -> None:
    content = xlsx(
        [
            ["Full Name", "Mobile", "Signed up", "Score"],
            ["Ada Lovelace", 15550102030, date(2024, 5, 1), 7.5],
            [None, None, None, None],
            ["Bob", "555-010-2031", None, True],
        ]
    )
    parsed = parse_file(content, "anything.bin")
    assert parsed.file_format == "xlsx"
    assert parsed.columns == ["Full Name", "Mobile", "Signed up", "Score"]
    assert [(row.number, row.cells) for row in parsed.rows] == [
        (2, ("Ada Lovelace", "15550102030", "2024-05-01T00:00:00", "7.5")),
        (4, ("Bob", "555-010-2031", "", "TRUE")),
    ]


def test_guess_mapping_by_header_names() -> None:
    columns = ["Full Name", "E-mail", "Mobile", "Phone", "Company Name", "Notes", "Stage", "Tags", "Colour"]
    assert guess_mapping(columns) == {
        "Full Name": "name",
        "E-mail": "email",
        "Mobile": "phone",
        "Phone": "ignore",  # phone is already taken by the first phone-like column
        "Company Name": "company",
        "Notes": "reason",
        "Stage": "status",
        "Tags": "tags",
        "Colour": "ignore",
    }
    assert guess_mapping(["First name", "SURNAME", "lead_source"]) == {
        "First name": "first_name",
        "SURNAME": "last_name",
        "lead_source": "source",
    }


def test_check_mapping_fills_ignores_and_refuses_bad_targets() -> None:
    columns = ["A", "B", "C"]
    assert check_mapping({"A": "phone", "C": "fields. colour "}, columns) == {
        "A": "phone",
        "B": "ignore",
        "C": "fields.colour",
    }
    with pytest.raises(MappingError) as bad:
        check_mapping({"A": "phone", "B": "phone", "C": "shoe_size", "Z": "email"}, columns)
    assert set(bad.value.problems) == {"B", "C", "Z"}
    assert "already mapped from column 'A'" in bad.value.problems["B"]
    assert "unknown target" in bad.value.problems["C"]
    with pytest.raises(MappingError, match="custom field names"):
        check_mapping({"A": "fields."}, columns)


def test_row_values_normalise_every_mapped_cell() -> None:
    columns = ["Name", "Phone", "Email", "Tags", "Stage", "Colour", "Skip"]
    mapping = check_mapping(
        {
            "Name": "name",
            "Phone": "phone",
            "Email": "email",
            "Tags": "tags",
            "Stage": "status",
            "Colour": "fields.colour",
        },
        columns,
    )
    row = DataRow(
        7,
        (
            "Ada King Lovelace",
            "(212) 555-0100",
            " ADA@Example.com",
            "VIP; Dental,vip",
            "closed_won",
            "red",
            "x",
        ),
    )
    result = row_values(row, columns, mapping, region="US", statuses=STATUSES)
    assert result.ok
    assert result.status_id == 3
    assert result.values == {
        "first_name": "Ada",
        "last_name": "King Lovelace",
        "phone": "+12125550100",
        "email": "ada@example.com",
        "tags": ["vip", "dental"],
        "fields": {"colour": "red"},
        "source": "import",
    }
    # The region reads national numbers: the same digits are not a valid GB number.
    gb = row_values(row, columns, mapping, region="GB", statuses=STATUSES)
    assert [(e.row, e.field) for e in gb.errors] == [(7, "phone")]


def test_row_errors_name_the_row_and_the_field() -> None:
    columns = ["first", "phone", "email", "status", "company"]
    mapping = check_mapping(
        {"first": "first_name", "phone": "phone", "email": "email", "status": "status", "company": "company"},
        columns,
    )
    row = DataRow(12, ("Ada", "12", "not-an-email", "Pending", "x" * 201))
    result = row_values(row, columns, mapping, region="US", statuses=STATUSES)
    assert not result.ok
    assert [(e.row, e.field) for e in result.errors] == [
        (12, "phone"),
        (12, "email"),
        (12, "status"),
        (12, "company"),
    ]
    assert "no status is called 'Pending'" in result.errors[2].message
    assert result.errors[0].as_dict()["row"] == 12


def test_a_row_needs_a_name_phone_or_email() -> None:
    columns = ["company", "source"]
    mapping = check_mapping({"company": "company", "source": "source"}, columns)
    result = row_values(DataRow(2, ("Acme", "fair")), columns, mapping, region="US", statuses=STATUSES)
    assert [(e.field, e.message) for e in result.errors] == [("row", "the row has no name, phone or e-mail")]
    named = row_values(
        DataRow(3, ("Acme", "")),
        ["company", "source"],
        {"company": "last_name"},
        region="US",
        statuses=STATUSES,
    )
    assert named.ok
    assert named.values == {"last_name": "Acme", "source": "import"}


def test_status_lookup_by_key_or_name_in_any_case() -> None:
    assert STATUSES.find("CONTACTED") == 2
    assert STATUSES.find(" closed   won ") == 3
    assert STATUSES.find("closed-won") == 3
    assert STATUSES.find("new") == 1
    assert STATUSES.find("lost") is None
