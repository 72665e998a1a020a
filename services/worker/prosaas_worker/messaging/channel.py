"""The interface every message channel implements (SMS now, WhatsApp later).

A channel only talks to its provider; the dispatcher owns the rows, the retries and the exactly-once
bookkeeping. ``dedup_key`` is passed so a provider with idempotency keys can use it; for one without
(Twilio Messaging) :meth:`MessageChannel.find_sent` lets the dispatcher ask whether a send whose answer
was lost (worker killed mid-request) actually went out, before sending it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Sender:
    """Who a message is sent for: the business, its sending number and our message row."""

    business_id: int
    from_number: str
    message_id: int


@dataclass(frozen=True)
class SendResult:
    provider_sid: str
    provider_status: str


class SendError(Exception):
    """A send failed. ``permanent`` failures (an invalid number, a refused body) are not retried."""

    def __init__(self, message: str, *, permanent: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class MessageChannel(Protocol):
    name: str

    async def send(self, sender: Sender, to: str, text: str, dedup_key: str) -> SendResult:
        """Hand one message to the provider; raises :class:`SendError` (or a network error)."""
        ...

    async def find_sent(self, sender: Sender, to: str, text: str, since: datetime) -> SendResult | None:
        """The provider's record of this message if it was accepted at or after ``since``, else None."""
        ...

    async def aclose(self) -> None: ...
