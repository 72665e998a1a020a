"""Field mapping of inbound lead posts: aliases, separators, unwrapping, normalising and refusals."""

from __future__ import annotations

from typing import Any

import pytest

from prosaas_api.intake.mapping import (
    MAX_CUSTOM_FIELDS,
    MAX_CUSTOM_VALUE,
    InvalidSubmission,
    Submission,
    canonical,
    column_of,
    map_post,
    submission_from,
    unwrap,
)


def submit(data: dict[str, Any], region: str = "US", source: str = "webhook") -> Submission:
    return submission_from(data, region=region, source=source)


def refused(data: dict[str, Any], region: str = "US") -> list[tuple[str | None, str]]:
    with pytest.raises(InvalidSubmission) as caught:
        submit(data, region)
    return caught.value.errors


@pytest.mark.parametrize(
    ("key", "column"),
    [
        ("First Name", "first_name"),
        ("first-name", "first_name"),
        ("firstName", "first_name"),
        ("FNAME", "first_name"),
        ("given_name", "first_name"),
        ("Last Name", "last_name"),
        ("surname", "last_name"),
        ("family-name", "last_name"),
        ("Full Name", "name"),
        ("your-name", "name"),
        ("Phone Number", "phone"),
        ("tel", "phone"),
        ("WhatsApp", "phone"),
        ("mobile", "phone"),
        ("E-Mail", "email"),
        ("email_address", "email"),
        ("your-email", "email"),
        ("Company Name", "company"),
        ("organization", "company"),
        ("your-message", "reason"),
        ("Comments", "reason"),
        ("inquiry", "reason"),
        ("tags[]", "tags"),
        ("submission_id", "external_id"),
        ("entryId", "external_id"),
        ("id", "external_id"),
        ("budget", None),
        ("utm_source", None),
        ("yourself", None),
    ],
)
def test_keys_are_matched_without_case_or_separators(key: str, column: str | None) -> None:
    assert column_of(key) == column


def test_canonical_keeps_letters_of_any_script() -> None:
    assert canonical("First_Name") == "firstname"
    assert canonical("Téléphone Portable") == "téléphoneportable"
    assert canonical("שם מלא") == "שםמלא"


def test_a_full_lead_is_normalised() -> None:
    result = submit(
        {
            "First Name": "  Ada ",
            "last-name": "Lovelace",
            "Phone Number": "(212) 555-0100",
            "E-Mail": "ADA@Example.COM",
            "Company": "Analytical Engines",
            "Message": "Please call me back",
            "tags": "Website, urgent ,website",
            "submission_id": 42,
            "budget": "5k",
            "newsletter": True,
        },
        source="site-form",
    )
    assert result.values == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+12125550100",
        "email": "ada@example.com",
        "company": "Analytical Engines",
        "reason": "Please call me back",
        "tags": ["website", "urgent"],
        "fields": {"budget": "5k", "newsletter": True},
        "source": "site-form",
    }
    assert result.external_id == "42"


def test_a_full_name_is_split_unless_first_or_last_are_given() -> None:
    assert submit({"name": "Ada King Lovelace"}).values["first_name"] == "Ada"
    assert submit({"name": "Ada King Lovelace"}).values["last_name"] == "King Lovelace"
    explicit = submit({"name": "A. K. L.", "first_name": "Ada", "last_name": "Lovelace"}).values
    assert (explicit["first_name"], explicit["last_name"]) == ("Ada", "Lovelace")


def test_the_phone_is_read_in_the_business_region() -> None:
    assert submit({"phone": "030 1234567"}, region="DE").values["phone"] == "+49301234567"
    assert submit({"phone": 2125550100}).values["phone"] == "+12125550100"


def test_a_lone_body_or_data_wrapper_is_unwrapped_once() -> None:
    inner = {"email": "a@b.example"}
    assert unwrap({"body": inner}) == inner
    assert unwrap({"Data": inner}) == inner
    assert unwrap({"data": inner, "x": 1}) == {"data": inner, "x": 1}
    assert unwrap({"data": "text"}) == {"data": "text"}
    assert submit({"body": {"email": "a@b.example", "name": "Ada"}}).values["email"] == "a@b.example"
    # Only one level: a doubly wrapped post has no lead fields at its second level.
    assert refused({"body": {"data": {"email": "a@b.example"}}}) == [
        (None, "a lead needs a phone number, an e-mail address or a name")
    ]


def test_the_first_value_of_a_column_wins_and_the_next_is_kept_as_a_custom_field() -> None:
    result = submit({"phone": "212-555-0100", "mobile": "212-555-0142", "notes": "b", "message": "a"})
    assert result.values["phone"] == "+12125550100"
    assert result.values["reason"] == "b"
    assert result.values["fields"] == {"mobile": "212-555-0142", "message": "a"}


def test_custom_fields_are_short_scalars_capped_in_number() -> None:
    data: dict[str, Any] = {"email": "a@b.example"}
    data.update({f"q{n}": f"answer {n}" for n in range(MAX_CUSTOM_FIELDS + 10)})
    data.update(
        {
            "long": "x" * 5000,
            "nested": {"a": 1},
            "empty": "  ",
            "nothing": None,
            "_wpnonce": "abc",
        }
    )
    fields = submit(data).values["fields"]
    assert len(fields) == MAX_CUSTOM_FIELDS
    assert "q0" in fields
    assert f"q{MAX_CUSTOM_FIELDS}" not in fields
    small = submit(
        {
            "email": "a@b.example",
            "long": "x" * 5000,
            "nested": {"a": 1},
            "empty": " ",
            "_wpcf7": "12",
            "colors": ["red", "blue"],
            "age": 41,
            "nul": "a\x00b",
        }
    ).values["fields"]
    assert small == {"long": "x" * MAX_CUSTOM_VALUE, "colors": "red, blue", "age": 41, "nul": "ab"}


def test_tags_as_a_list_or_a_comma_string() -> None:
    assert submit({"email": "a@b.example", "tags": ["VIP", "web"]}).values["tags"] == ["vip", "web"]
    assert submit({"email": "a@b.example", "Tags": "vip,,web"}).values["tags"] == ["vip", "web"]
    [(key, message)] = refused({"email": "a@b.example", "Tags": "fine, bad!tag"})
    assert key == "Tags"
    assert "bad!tag" in message


def test_invalid_values_are_refused_with_the_key_as_posted() -> None:
    errors = refused({"Phone Number": "12", "E-Mail": "not-an-address", "name": "Ada"})
    assert [key for key, _ in errors] == ["Phone Number", "E-Mail"]
    assert refused({"phone": {"number": "2125550100"}}) == [("phone", "must be a single text value")]
    assert refused({"email": "a@b.example", "id": "x" * 201}) == [("id", "at most 200 characters")]


def test_a_lead_needs_a_phone_an_email_or_a_name() -> None:
    assert refused({"company": "Acme", "budget": "5k"}) == [
        (None, "a lead needs a phone number, an e-mail address or a name")
    ]
    assert submit({"phone": "212-555-0100"}).values["first_name"] == ""
    assert submit({"email": "a@b.example"}).values["phone"] is None
    assert submit({"surname": "Lovelace"}).values["last_name"] == "Lovelace"


def test_long_names_are_cut_to_the_columns() -> None:
    values = submit({"first_name": "A" * 300, "company": "C" * 300}).values
    assert (len(values["first_name"]), len(values["company"])) == (100, 200)


def test_map_post_records_the_posted_keys() -> None:
    mapped = map_post({"Your-Phone": "212-555-0100", "extra": "x"})
    assert mapped.columns == {"phone": "212-555-0100"}
    assert mapped.keys == {"phone": "Your-Phone"}
    assert mapped.fields == {"extra": "x"}
