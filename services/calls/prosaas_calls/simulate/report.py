"""Reading a simulated call back: the stored transcript and stream figures, percentiles, printing.

The transcript is what the service saved (``call_turns``), read straight from Postgres when a database
URL is given — the simulator needs no API credentials. The row's ``usage`` (frames the service counted
in and out) is compared with what the simulated Twilio sent and received: the difference is lost frames.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from prosaas_calls.simulate.caller import CallResult

STORED_WAIT_S = 10.0  # the service writes the call's usage after the stream closed


@dataclass
class Stored:
    """What the service recorded for one call."""

    turns: list[tuple[int, str, str]] = field(default_factory=list)  # (offset ms, speaker, text)
    usage: dict[str, Any] = field(default_factory=dict)
    end_reason: str | None = None
    status: str | None = None


def plain_dsn(database_url: str) -> str:
    """A DATABASE_URL as asyncpg takes it (no SQLAlchemy driver suffix)."""
    return re.sub(r"^postgres(?:ql)?(?:\+\w+)?://", "postgresql://", database_url.strip())


async def read_stored(
    database_url: str, call_sids: Sequence[str], wait_s: float = STORED_WAIT_S
) -> dict[str, Stored]:
    """The stored turns and usage of ``call_sids``, once every one has its usage written (or the wait
    ran out: what is there then)."""
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            rows = await conn.fetch(
                "SELECT id, call_sid, usage, end_reason, status FROM calls WHERE call_sid = ANY($1::text[])",
                list(call_sids),
            )
            done = [row for row in rows if "frames_in" in json.loads(row["usage"] or "{}")]
            if len(done) == len(call_sids) or loop.time() > deadline:
                break
            await asyncio.sleep(0.1)
        stored: dict[str, Stored] = {}
        ids = {row["id"]: row["call_sid"] for row in rows}
        for row in rows:
            usage = json.loads(row["usage"] or "{}")
            stored[row["call_sid"]] = Stored(usage=usage, end_reason=row["end_reason"], status=row["status"])
        for turn in await conn.fetch(
            "SELECT call_id, offset_ms, speaker, text FROM call_turns WHERE call_id = ANY($1::bigint[]) "
            "ORDER BY call_id, offset_ms, id",
            list(ids),
        ):
            stored[ids[turn["call_id"]]].turns.append((turn["offset_ms"], turn["speaker"], turn["text"]))
        return stored
    finally:
        await conn.close()


def lost_frames(result: CallResult, stored: Stored | None) -> tuple[int, int] | None:
    """(caller frames the service did not count, service frames that never arrived), when known."""
    if stored is None or "frames_in" not in stored.usage:
        return None
    lost_in = max(0, result.frames_sent - int(stored.usage.get("frames_in", 0)))
    lost_out = max(0, int(stored.usage.get("frames_out", 0)) - result.frames_received)
    return lost_in, lost_out


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)])


def percentile_over(nonzero: Sequence[float], total: int, p: float) -> float | None:
    """The percentile of ``total`` values of which all but ``nonzero`` are 0 (per-frame playback gaps:
    most frames follow the previous one without a gap)."""
    if total <= 0:
        return None
    zeros = max(0, total - len(nonzero))
    rank = max(1, math.ceil(p / 100 * max(total, len(nonzero))))
    return 0.0 if rank <= zeros else float(sorted(nonzero)[rank - zeros - 1])


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def spread(label: str, values: Sequence[float]) -> str:
    return (
        f"{label:<36}{len(values):>7}{fmt_ms(percentile(values, 50)):>9}{fmt_ms(percentile(values, 95)):>9}"
        f"{fmt_ms(percentile(values, 99)):>9}{fmt_ms(max(values) if values else None):>9}"
    )


def print_call(result: CallResult, stored: Stored | None) -> None:
    """One call: what was said (stored transcript when available) and its figures."""
    print(f"call {result.call_sid}")
    if result.refused is not None:
        print(f"  refused by the service: {result.refused!r}")
        return
    if stored is not None and stored.turns:
        print("  transcript (as stored by the service):")
        for offset_ms, speaker, text in stored.turns:
            print(f"    [{offset_ms / 1000:6.1f}s] {speaker:>6}: {text}")
    else:
        print("  conversation (as heard by the simulated caller):")
        events = [(at, "caller", what) for at, what in result.said]
        events += [(at, "bot", f"({seconds:.1f} s of audio)") for at, seconds in result.bot_spoke]
        for at, who, what in sorted(events):
            print(f"    [{at:6.1f}s] {who:>6}: {what}")
    print(
        f"  ended by: {result.ended_by}" + (f" ({stored.end_reason})" if stored and stored.end_reason else "")
    )
    print(
        f"  duration {result.duration_s:.1f} s, bot audio {result.bot_audio_ms / 1000:.1f} s, "
        f"frames sent {result.frames_sent}, received {result.frames_received}, marks echoed "
        f"{result.marks_echoed}, clears {result.clears}"
    )
    lost = lost_frames(result, stored)
    if lost is not None:
        print(f"  lost frames: {lost[0]} caller → service, {lost[1]} service → caller")
    print(
        f"  incoming_call webhook {result.webhook_ms:.1f} ms; start → first bot audio "
        f"{fmt_ms(result.first_audio_ms)} ms; simulator lag max {result.sender_lag_ms:.1f} ms"
    )
    for label, values in (
        ("response latency ms (caller stopped → bot audio)", result.response_latency_ms),
        ("barge-in ms (caller spoke over bot → clear)", result.barge_in_ms),
        ("playback gaps ms (silence inside a response)", result.gaps_ms),
    ):
        shown = ", ".join(f"{v:.0f}" for v in values[:12]) + (" …" if len(values) > 12 else "")
        print(f"  {label}: {shown or '-'}")


def aggregate(results: Sequence[CallResult], stored: dict[str, Stored]) -> dict[str, Any]:
    """Figures over many calls (the ones that streamed)."""
    streamed = [r for r in results if r.refused is None]
    gaps = [g for r in streamed for g in r.gaps_ms]
    frames = sum(r.frames_received for r in streamed)
    lost = [lost_frames(r, stored.get(r.call_sid)) for r in streamed]
    known = [pair for pair in lost if pair is not None]
    return {
        "calls": len(streamed),
        "refused": sum(1 for r in results if r.refused is not None),
        "first_audio_ms": [r.first_audio_ms for r in streamed if r.first_audio_ms is not None],
        "no_audio": sum(1 for r in streamed if r.first_audio_ms is None),
        "webhook_ms": [r.webhook_ms for r in streamed],
        "response_latency_ms": [v for r in streamed for v in r.response_latency_ms],
        "barge_in_ms": [v for r in streamed for v in r.barge_in_ms],
        # Per frame played: a frame that followed the previous one without silence counts as a 0 gap.
        "gaps_ms": gaps,
        "frame_gap_p99_ms": percentile_over(gaps, frames, 99),
        "frames_received": frames,
        "call_seconds": sum(r.duration_s for r in streamed),
        "frames_sent": sum(r.frames_sent for r in streamed),
        "lost_in": sum(pair[0] for pair in known) if known else None,
        "lost_out": sum(pair[1] for pair in known) if known else None,
        "sender_lag_max_ms": max((r.sender_lag_ms for r in streamed), default=0.0),
        "ended_by": sorted({r.ended_by for r in streamed}),
    }


def print_aggregate(figures: dict[str, Any]) -> None:
    print(
        f"\n{figures['calls']} calls streamed, {figures['refused']} refused, "
        f"{figures['no_audio']} without bot audio"
    )
    print(f"{'figure':<36}{'count':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}")
    print(spread("incoming_call webhook ms", figures["webhook_ms"]))
    print(spread("start → first bot audio ms", figures["first_audio_ms"]))
    print(spread("response latency ms", figures["response_latency_ms"]))
    print(spread("barge-in (speech → clear) ms", figures["barge_in_ms"]))
    print(spread("playback gaps ms (silence in a response)", figures["gaps_ms"]))
    print(
        f"playback gap p99 over the {figures['frames_received']} frames played: "
        f"{fmt_ms(figures['frame_gap_p99_ms'])} ms"
    )
    lost = (
        "unknown (no DATABASE_URL)"
        if figures["lost_in"] is None
        else f"{figures['lost_in']} in, {figures['lost_out']} out"
    )
    print(
        f"frames sent {figures['frames_sent']}, received {figures['frames_received']}; lost {lost}; "
        f"simulator lag max {figures['sender_lag_max_ms']:.1f} ms; ended by {', '.join(figures['ended_by'])}"
    )
