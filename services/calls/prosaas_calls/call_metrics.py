"""Per-call figures in the calls service's ``/metrics`` (the same registry as its HTTP metrics).

Every figure is observed once per call when it ends (never per frame), so the cost is independent of
call length: time from ``start`` to the first agent audio, response latency per turn (the caller stopped
speaking → the agent's next audio went out), barge-in reaction (speech started → ``clear`` sent), frames
in and out, malformed messages, and how calls ended.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class CallMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.active = Gauge("calls_active", "Media streams running a call in this process", registry=registry)
        self.ended = Counter("calls_total", "Calls ended, by how they ended", ["ended_by"], registry=registry)
        self.first_audio = Histogram(
            "call_first_audio_seconds",
            "From the stream's start message to the first agent audio sent",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.response_latency = Histogram(
            "call_response_latency_seconds",
            "From the caller's speech stopping to the agent's next audio sent",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.barge_in_reaction = Histogram(
            "call_barge_in_reaction_seconds",
            "From the caller's speech starting over the agent to clear sent",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.frames = Counter("call_frames_total", "Media frames", ["direction"], registry=registry)
        self.malformed = Counter(
            "call_malformed_messages_total",
            "Stream messages dropped as malformed or unknown",
            registry=registry,
        )

    def observe_call(
        self,
        *,
        ended_by: str,
        first_audio_ms: float | None,
        response_latency_ms: Iterable[float],
        barge_in_reaction_ms: Iterable[float],
        frames_in: int,
        frames_out: int,
        dropped: int,
    ) -> None:
        self.ended.labels(ended_by).inc()
        if first_audio_ms is not None:
            self.first_audio.observe(first_audio_ms / 1000)
        for value in response_latency_ms:
            self.response_latency.observe(value / 1000)
        for value in barge_in_reaction_ms:
            self.barge_in_reaction.observe(value / 1000)
        self.frames.labels("in").inc(frames_in)
        self.frames.labels("out").inc(frames_out)
        self.malformed.inc(dropped)
