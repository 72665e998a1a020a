"""The offline receptionist's conversation: a deterministic state machine, free of audio and I/O.

It greets with the business's greeting, takes the reason for the call, asks the caller's name, offers
the next free times from the availability engine (``check_availability``), books the one the caller
picks by voice or keypad (``book_appointment``), asks whether there is anything else and says goodbye
(``end_call`` first, so the call ends once the goodbye was heard). What the caller said is saved on
their lead with ``save_lead_info``. The same tools the model-driven path uses do the work; their
failures arrive as sentences (``error``) the dialog simply says.

Inputs are :meth:`ReceptionistDialog.start`, :meth:`~ReceptionistDialog.heard` (the recognised phrase),
:meth:`~ReceptionistDialog.digit` and :meth:`~ReceptionistDialog.tool_result`; each returns the
:data:`Action` list to carry out in order. The dialog waits for a tool's result before going on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from prosaas_calls.providers.offline.grammar import (
    CHOICE,
    CLOSING,
    NAME,
    REASON,
    parse_choice,
    parse_name,
    parse_reason,
    parse_yes_no,
)

MAX_RETRIES = 2
ORDINAL_WORDS = ("first", "second", "third")


@dataclass(frozen=True, slots=True)
class Say:
    text: str


@dataclass(frozen=True, slots=True)
class UseTool:
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class Listen:
    """Recognise the caller's next answer with this grammar."""

    grammar: str


Action = Say | UseTool | Listen


class Step(StrEnum):
    REASON = "reason"
    NAME = "name"
    CHOOSING = "choosing"
    CLOSING = "closing"
    DONE = "done"


class ReceptionistDialog:
    def __init__(self, *, business_name: str, greeting: str) -> None:
        self.business_name = business_name
        self.greeting = greeting
        self.step = Step.REASON
        self.reason = ""
        self.name: str | None = None
        self.offered: list[Mapping[str, Any]] = []
        self.booked: str | None = None
        self._retries = 0

    def start(self) -> list[Action]:
        return [Listen(REASON), Say(self.greeting)]

    # what the caller did -------------------------------------------------------------------------------
    def heard(self, text: str) -> list[Action]:
        if self.step is Step.REASON:
            self.reason = parse_reason(text)
            lead = {"reason": self.reason} if self.reason else {}
            ack = f"Sure, a {self.reason}." if self.reason else "Sure."
            self.step = Step.NAME
            return [
                *([UseTool("save_lead_info", lead)] if lead else []),
                Listen(NAME),
                Say(f"{ack} May I have your name, please?"),
            ]
        if self.step is Step.NAME:
            name = parse_name(text)
            if name is None and self._retry():
                return [Say("Sorry, I didn't catch your name. Could you say it again?")]
            self.name = name
            self.step = Step.CHOOSING
            return [
                *([UseTool("save_lead_info", {"name": name})] if name else []),
                UseTool("check_availability"),
            ]
        if self.step is Step.CHOOSING:
            return self._choose(parse_choice(text, len(self.offered)))
        if self.step is Step.CLOSING:
            answer = parse_yes_no(text)
            if answer is None and self._retry():
                return [Say("Sorry, is there anything else I can help you with? Please say yes or no.")]
            if answer:
                return self._goodbye("Someone from our team will call you back about that.")
            return self._goodbye("")
        return []

    def digit(self, digit: str) -> list[Action]:
        """Keypad: 1 to 3 choose an offered time, 0 declines; ignored elsewhere."""
        if self.step is Step.CHOOSING and digit.isdigit():
            value = int(digit)
            return self._choose(-1 if value == 0 else value - 1 if value <= len(self.offered) else None)
        return []

    def tool_result(self, name: str, output: Mapping[str, Any]) -> list[Action]:
        error = output.get("error")
        if name == "check_availability":
            self.offered = list(output.get("slots") or [])[: len(ORDINAL_WORDS)]
            if error or not self.offered:
                sorry = str(error or "I'm sorry, there are no free times in the next days.")
                return self._goodbye(f"{sorry} Someone from our team will call you back.")
            return [Listen(CHOICE), Say(self._offer())]
        if name == "book_appointment":
            if error:
                self.offered = []
                return [Say(str(error)), UseTool("check_availability")]
            self.booked = str(output.get("spoken") or "")
            self.step = Step.CLOSING
            return [Listen(CLOSING), Say(f"You're booked for {self.booked}. Is there anything else?")]
        return []

    # helpers --------------------------------------------------------------------------------------------
    def _retry(self) -> bool:
        """True when the question should be asked again; after MAX_RETRIES the dialog moves on."""
        self._retries += 1
        if self._retries > MAX_RETRIES:
            self._retries = 0
            return False
        return True

    def _offer(self) -> str:
        times = [str(slot.get("spoken") or slot.get("start")) for slot in self.offered]
        listed = times[0] if len(times) == 1 else ", ".join(times[:-1]) + " or " + times[-1]
        keys = ", ".join(str(i + 1) for i in range(len(times)))
        who = f"{self.name.split()[0]}, " if self.name else ""
        return f"Thank you, {who}I can offer {listed}. Which one would you like? You can also press {keys}."

    def _choose(self, index: int | None) -> list[Action]:
        if index is None:
            if self._retry():
                return [Say(f"Sorry, which one would you like? {self._offer_short()}")]
            index = -1
        self._retries = 0
        if index < 0:
            self.step = Step.CLOSING
            return [Listen(CLOSING), Say("No problem, I won't book anything. Is there anything else?")]
        slot = self.offered[index]
        arguments = {"start": slot.get("start"), **({"name": self.name} if self.name else {})}
        return [UseTool("book_appointment", arguments)]

    def _offer_short(self) -> str:
        words = ORDINAL_WORDS[: len(self.offered)]
        return "Say " + ", ".join(words[:-1]) + (" or " if len(words) > 1 else "") + words[-1] + "."

    def _goodbye(self, before: str) -> list[Action]:
        self.step = Step.DONE
        text = f"{before} Thank you for calling {self.business_name}. Goodbye!".strip()
        return [UseTool("end_call"), Say(text)]
