"""``python -m prosaas_calls.simulate``: place simulated Twilio calls against a running calls service.

    python -m prosaas_calls.simulate                       # the demo conversation, one call
    python -m prosaas_calls.simulate --calls 10 --ramp 2   # ten concurrent calls, aggregate figures
    python -m prosaas_calls.simulate --step wait --step "say:Hello" --step wait --step hangup

Reads PUBLIC_HOST and TWILIO_AUTH_TOKEN (the calls service's own, so its signatures check out) and, for
the stored transcript and lost-frame counts, DATABASE_URL. Exits 1 when a call was refused, failed or
never heard the bot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from prosaas_calls.audio import write_ulaw_wav
from prosaas_calls.simulate.caller import CallResult, Target
from prosaas_calls.simulate.report import Stored, aggregate, print_aggregate, print_call, read_stored
from prosaas_calls.simulate.runner import Plan, run_calls
from prosaas_calls.simulate.script import DEFAULT_SCRIPT, ScriptError, Step, parse_script, prepare_audio
from prosaas_calls.speech.tts import SpeechUnavailable, synthesize

DEMO_NUMBER = "+12125550100"  # the number `make seed` gives the demo business (prosaas_api.seed)


def parser() -> argparse.ArgumentParser:
    env = os.environ
    p = argparse.ArgumentParser(
        prog="python -m prosaas_calls.simulate", description=(__doc__ or "").splitlines()[0]
    )
    port = env.get("CALLS_PORT", "5050")
    p.add_argument("--base-url", default=f"http://127.0.0.1:{port}", help="where the calls service listens")
    p.add_argument(
        "--public-host", default=env.get("PUBLIC_HOST", "localhost"), help="PUBLIC_HOST of the service"
    )
    p.add_argument(
        "--auth-token", default=env.get("TWILIO_AUTH_TOKEN", ""), help="TWILIO_AUTH_TOKEN of the service"
    )
    p.add_argument(
        "--to", default=DEMO_NUMBER, help=f"the number called (default {DEMO_NUMBER}, the demo business)"
    )
    p.add_argument("--from", dest="caller", default="+14155550123", help="the caller's number")
    p.add_argument("--calls", type=int, default=1, help="concurrent calls (default 1)")
    p.add_argument("--ramp", type=float, default=0.0, help="seconds over which the calls start (default 0)")
    p.add_argument("--step", action="append", default=[], help="a script step (repeat); see --help-script")
    p.add_argument("--script", type=Path, help="a file of script steps, one a line")
    p.add_argument("--dtmf", default="", help="press these keys after the greeting")
    p.add_argument(
        "--wav-out", type=Path, default=Path("call-demo-bot.wav"), help="the bot's audio as played"
    )
    p.add_argument("--no-record", action="store_true", help="do not write the bot's audio")
    p.add_argument("--turn-timeout", type=float, default=30.0, help="longest wait for the bot (seconds)")
    p.add_argument("--no-status", action="store_true", help="do not post the terminal call_status")
    p.add_argument(
        "--database-url", default=env.get("DATABASE_URL", ""), help="read the stored transcript here"
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON (one object)")
    p.add_argument("--help-script", action="store_true", help="explain the script steps and exit")
    return p


def steps_of(args: argparse.Namespace) -> list[Step]:
    lines: list[str] = list(args.step)
    if args.script is not None:
        lines += args.script.read_text().splitlines()
    steps = parse_script(lines or DEFAULT_SCRIPT)
    if args.dtmf:
        first_wait = next((i for i, s in enumerate(steps) if s.kind == "wait"), -1)
        steps[first_wait + 1 : first_wait + 1] = parse_script([f"dtmf:{args.dtmf}", "wait"])
    return steps


def wav_path(base: Path, index: int, calls: int) -> Path:
    return base if calls == 1 else base.with_name(f"{base.stem}-{index + 1}{base.suffix}")


async def simulate(args: argparse.Namespace, steps: list[Step]) -> tuple[list[CallResult], dict[str, Stored]]:
    target = Target(
        base_url=args.base_url.rstrip("/"),
        public_host=args.public_host,
        auth_token=args.auth_token,
        to=args.to,
        caller=args.caller,
    )
    plan = Plan(
        steps=steps,
        audio=await prepare_audio(steps, synthesize),
        record=not args.no_record,
        turn_timeout=args.turn_timeout,
        post_status=not args.no_status,
    )
    results = await run_calls(target, plan, args.calls, args.ramp)
    stored: dict[str, Stored] = {}
    if args.database_url:
        sids = [r.call_sid for r in results if r.refused is None]
        stored = await read_stored(args.database_url, sids) if sids else {}
    return results, stored


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.help_script:
        from prosaas_calls.simulate import script

        print(script.__doc__)
        return 0
    if not args.auth_token:
        print("TWILIO_AUTH_TOKEN is not set: the calls service refuses unsigned webhooks (set it in .env)")
        return 2
    if args.calls < 1:
        print("--calls must be at least 1")
        return 2
    try:
        steps = steps_of(args)
        results, stored = asyncio.run(simulate(args, steps))
    except (ScriptError, SpeechUnavailable, OSError) as exc:
        print(f"cannot run the calls: {exc}")
        return 2
    if not args.no_record:
        for index, result in enumerate(results):
            if result.recording:
                write_ulaw_wav(wav_path(args.wav_out, index, len(results)), result.recording)
    figures = aggregate(results, stored)
    if args.json:
        calls = [
            r.figures() | {"stored_usage": stored[r.call_sid].usage if r.call_sid in stored else None}
            for r in results
        ]
        print(json.dumps({"aggregate": figures, "calls": calls}))
    else:
        print("script: " + " | ".join(str(step) for step in steps))
        for index, result in enumerate(results if len(results) <= 3 else results[:1]):
            print_call(result, stored.get(result.call_sid))
            if result.recording:
                print(f"  bot audio written to {wav_path(args.wav_out, index, len(results))}")
        if len(results) > 1:
            print_aggregate(figures)
    failed = [
        r
        for r in results
        if r.refused is not None or r.ended_by.startswith("error") or r.first_audio_ms is None
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
