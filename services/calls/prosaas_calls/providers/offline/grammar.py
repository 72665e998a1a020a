"""What the offline receptionist can understand: one small JSGF grammar per question, and the parsers
that turn a recognised phrase into the dialog's answer.

The grammars cover the usual ways of answering each question (a name from a list of common names, a
reason from a list of common services, an ordinal or yes/no for the offered times, yes/no/goodbye at
the end). Words the model's dictionary cannot pronounce are left out when the grammars are built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

REASON = "reason"
NAME = "name"
CHOICE = "choice"
CLOSING = "closing"

FIRST_NAMES = [
    "james",
    "john",
    "robert",
    "michael",
    "william",
    "david",
    "richard",
    "joseph",
    "thomas",
    "charles",
    "daniel",
    "matthew",
    "anthony",
    "mark",
    "paul",
    "steven",
    "andrew",
    "joshua",
    "kevin",
    "brian",
    "george",
    "edward",
    "peter",
    "jack",
    "henry",
    "sam",
    "adam",
    "ben",
    "tom",
    "mary",
    "patricia",
    "jennifer",
    "linda",
    "elizabeth",
    "barbara",
    "susan",
    "jessica",
    "sarah",
    "karen",
    "nancy",
    "lisa",
    "betty",
    "emily",
    "emma",
    "olivia",
    "sophia",
    "anna",
    "laura",
    "julia",
    "kate",
    "maria",
    "rachel",
    "amy",
    "helen",
    "ruth",
    "alice",
    "grace",
]
LAST_NAMES = [
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "miller",
    "davis",
    "wilson",
    "anderson",
    "taylor",
    "thomas",
    "moore",
    "martin",
    "jackson",
    "white",
    "harris",
    "clark",
    "lewis",
    "walker",
    "hall",
    "allen",
    "young",
    "king",
    "wright",
    "green",
    "baker",
    "adams",
    "nelson",
]
SERVICES = [
    "haircut",
    "cut",
    "color",
    "consultation",
    "checkup",
    "check",
    "cleaning",
    "repair",
    "quote",
    "estimate",
    "massage",
    "visit",
    "meeting",
    "appointment",
    "treatment",
    "lesson",
    "installation",
    "inspection",
    "tour",
    "demo",
]
FILLERS = ["hello", "hi", "yes", "yeah", "well", "okay", "so", "um"]
ORDINALS = {
    "first": 0,
    "one": 0,
    "second": 1,
    "two": 1,
    "third": 2,
    "three": 2,
    "last": -1,
}
YES = frozenset(["yes", "yeah", "yep", "sure", "okay", "correct", "fine", "great"])
NO = frozenset(["no", "nope", "nothing"])
GOODBYE = frozenset({"goodbye", "bye"})


def alternatives(words: Iterable[str], known: Callable[[str], bool]) -> str:
    kept = [word for word in dict.fromkeys(words) if known(word)]
    return "(" + " | ".join(kept) + ")"


def jsgf(name: str, rules: str) -> str:
    return f"#JSGF V1.0;\ngrammar {name};\n{rules}\n"


def build_grammars(known: Callable[[str], bool]) -> Mapping[str, str]:
    """The dialog's grammars (see :class:`prosaas_calls.speech.asr.DecoderPool`)."""
    fillers = alternatives(FILLERS, known)
    services = alternatives(SERVICES, known)
    yes, no = alternatives(sorted(YES), known), alternatives(sorted(NO), known)
    return {
        REASON: jsgf(
            REASON,
            f"public <reason> = [{fillers}] [i (would like | want | need)"
            f" [to (book | make | get | schedule)]] [a | an] [new] {services} [appointment] [please];",
        ),
        NAME: jsgf(
            NAME,
            f"public <name> = [{fillers}] [my name is | this is | it is | i am] "
            f"{alternatives(FIRST_NAMES, known)} [{alternatives(LAST_NAMES, known)}] [please];",
        ),
        CHOICE: jsgf(
            CHOICE,
            f"public <choice> = [{fillers}] ([{yes}] [the] {alternatives(ORDINALS, known)} [one | time] "
            f"| {yes} | {no} [thanks | thank you]) [please];",
        ),
        CLOSING: jsgf(
            CLOSING,
            f"public <closing> = [{fillers}] ({yes} | {no} [thanks | thank you] | [that is all] [thank you]) "
            f"[{alternatives(sorted(GOODBYE), known)}];",
        ),
    }


def words_of(text: str) -> list[str]:
    return text.lower().replace(",", " ").replace(".", " ").split()


def parse_name(text: str) -> str | None:
    """ "my name is john smith" → "John Smith"; None when no known first name was heard."""
    words = words_of(text)
    first = next((i for i, word in enumerate(words) if word in FIRST_NAMES), None)
    if first is None:
        return None
    name = [words[first]]
    if first + 1 < len(words) and words[first + 1] in LAST_NAMES:
        name.append(words[first + 1])
    return " ".join(part.capitalize() for part in name)


def parse_reason(text: str) -> str:
    """The service asked for ("haircut"), else what was heard, else ""."""
    words = words_of(text)
    services = [word for word in words if word in SERVICES and word != "appointment"]
    if services:
        return " ".join(services)
    return "appointment" if "appointment" in words else ""


def parse_choice(text: str, offered: int) -> int | None:
    """Index of the offered time the caller chose; -1 when they declined; None when unclear."""
    words = words_of(text)
    for word in words:
        if word in ORDINALS:
            index = ORDINALS[word]
            index = offered - 1 if index < 0 else index
            return index if 0 <= index < offered else None
    if any(word in NO for word in words):
        return -1
    if offered == 1 and any(word in YES for word in words):
        return 0
    return None


def parse_yes_no(text: str) -> bool | None:
    """True for yes, False for no / goodbye, None when unclear."""
    words = set(words_of(text))
    if words & NO or words & GOODBYE:
        return False
    if words & YES:
        return True
    return None
