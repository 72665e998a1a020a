"""The offline receptionist's dialog without audio: what it says, which tools it uses and when, how it
reads the caller's answers and keypad, and how it recovers from answers it did not understand."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from prosaas_calls.providers.offline.dialog import Action, Listen, ReceptionistDialog, Say, Step, UseTool
from prosaas_calls.providers.offline.grammar import (
    CHOICE,
    CLOSING,
    NAME,
    REASON,
    build_grammars,
    parse_choice,
    parse_name,
    parse_reason,
    parse_yes_no,
)

SLOTS = [
    {"start": "2026-11-30T09:00:00+00:00", "spoken": "Monday 30 November at 09:00"},
    {"start": "2026-11-30T09:30:00+00:00", "spoken": "Monday 30 November at 09:30"},
    {"start": "2026-11-30T10:00:00+00:00", "spoken": "Monday 30 November at 10:00"},
]


def said(actions: list[Action]) -> list[str]:
    return [action.text for action in actions if isinstance(action, Say)]


def tools(actions: list[Action]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(action.name, dict(action.arguments)) for action in actions if isinstance(action, UseTool)]


def dialog() -> ReceptionistDialog:
    return ReceptionistDialog(business_name="Bright Dental", greeting="Hello, Bright Dental. How can I help?")


def to_choosing(d: ReceptionistDialog) -> list[Action]:
    d.start()
    d.heard("i would like to book a checkup")
    d.heard("hi i am david brown")
    return d.tool_result("check_availability", {"slots": SLOTS})


def test_a_booking_conversation_from_greeting_to_goodbye() -> None:
    d = dialog()
    assert d.start() == [Listen(REASON), Say("Hello, Bright Dental. How can I help?")]

    after_reason = d.heard("i would like to book a checkup")
    assert tools(after_reason) == [("save_lead_info", {"reason": "checkup"})]
    assert said(after_reason) == ["Sure, a checkup. May I have your name, please?"]
    assert Listen(NAME) in after_reason

    after_name = d.heard("hi i am david brown")
    assert tools(after_name) == [("save_lead_info", {"name": "David Brown"}), ("check_availability", {})]

    offer = d.tool_result("check_availability", {"slots": SLOTS})
    assert offer[0] == Listen(CHOICE)
    assert said(offer) == [
        "Thank you, David, I can offer Monday 30 November at 09:00, Monday 30 November at 09:30 or "
        "Monday 30 November at 10:00. Which one would you like? You can also press 1, 2, 3."
    ]

    assert tools(d.heard("second one")) == [
        ("book_appointment", {"start": SLOTS[1]["start"], "name": "David Brown"})
    ]
    booked = d.tool_result("book_appointment", {"booked": True, "spoken": SLOTS[1]["spoken"]})
    assert said(booked) == ["You're booked for Monday 30 November at 09:30. Is there anything else?"]
    assert Listen(CLOSING) in booked

    goodbye = d.heard("no thank you goodbye")
    assert goodbye == [UseTool("end_call"), Say("Thank you for calling Bright Dental. Goodbye!")]
    assert d.step is Step.DONE


def test_keypad_digits_choose_or_decline_an_offered_time() -> None:
    d = dialog()
    to_choosing(d)
    assert d.digit("7") == [Say("Sorry, which one would you like? Say first, second or third.")]
    assert tools(d.digit("3")) == [("book_appointment", {"start": SLOTS[2]["start"], "name": "David Brown"})]

    declined = dialog()
    to_choosing(declined)
    assert said(declined.digit("0")) == ["No problem, I won't book anything. Is there anything else?"]
    assert declined.step is Step.CLOSING
    assert dialog().digit("1") == []  # keypad means nothing before times are offered


def test_a_name_not_understood_is_asked_again_then_the_dialog_moves_on() -> None:
    d = dialog()
    d.start()
    d.heard("a haircut")
    assert said(d.heard("")) == ["Sorry, I didn't catch your name. Could you say it again?"]
    assert said(d.heard("um")) == ["Sorry, I didn't catch your name. Could you say it again?"]
    moved_on = d.heard("")
    assert tools(moved_on) == [("check_availability", {})]  # no name: no save, straight to the times
    assert d.name is None


def test_a_taken_time_is_said_and_fresh_times_are_offered() -> None:
    d = dialog()
    to_choosing(d)
    d.heard("the first one")
    taken = d.tool_result("book_appointment", {"error": "I'm sorry, that time was just taken."})
    assert taken == [Say("I'm sorry, that time was just taken."), UseTool("check_availability")]
    assert said(d.tool_result("check_availability", {"slots": SLOTS[1:]}))[0].startswith(
        "Thank you, David, I can offer Monday 30 November at 09:30 or Monday 30 November at 10:00."
    )


@pytest.mark.parametrize(
    "result",
    [{"slots": [], "message": "There are no free times then."}, {"error": "I can't check the calendar."}],
)
def test_no_free_times_ends_the_call_politely(result: Mapping[str, Any]) -> None:
    d = dialog()
    d.start()
    d.heard("a consultation")
    d.heard("mary")
    actions = d.tool_result("check_availability", result)
    assert actions[0] == UseTool("end_call")
    assert said(actions)[0].endswith(
        "Someone from our team will call you back. Thank you for calling Bright Dental. Goodbye!"
    )


def test_anything_else_yes_promises_a_call_back() -> None:
    d = dialog()
    to_choosing(d)
    d.heard("no")
    assert said(d.heard("yes")) == [
        "Someone from our team will call you back about that. Thank you for calling Bright Dental. Goodbye!"
    ]


@pytest.mark.parametrize(
    ("text", "name"),
    [("my name is john smith", "John Smith"), ("it is emily", "Emily"), ("smith", None), ("", None)],
)
def test_names(text: str, name: str | None) -> None:
    assert parse_name(text) == name


@pytest.mark.parametrize(
    ("text", "offered", "choice"),
    [
        ("the second one", 3, 1),
        ("last one", 3, 2),
        ("third", 2, None),
        ("yes", 1, 0),
        ("yes", 3, None),
        ("no thanks", 3, -1),
        ("", 3, None),
    ],
)
def test_choices(text: str, offered: int, choice: int | None) -> None:
    assert parse_choice(text, offered) == choice


def test_reasons_and_yes_no() -> None:
    assert parse_reason("i would like to book a haircut") == "haircut"
    assert parse_reason("an appointment please") == "appointment"
    assert parse_reason("") == ""
    assert [parse_yes_no(t) for t in ("yes", "no thanks", "goodbye", "hmm")] == [True, False, False, None]


def test_grammars_leave_out_words_the_model_cannot_say() -> None:
    grammars = build_grammars(lambda word: word != "karen")
    assert set(grammars) == {REASON, NAME, CHOICE, CLOSING}
    assert "karen" not in grammars[NAME]
    assert "sarah" in grammars[NAME]
    assert all(text.startswith("#JSGF V1.0;") for text in grammars.values())
