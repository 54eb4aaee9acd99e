"""What an inbound text means for consent: opt-out words, soft requests, HELP, START.

Per the FCC's 2025 revocation rule the whole-message words below revoke consent; CRM Text itself
only acts on STOP and QUIT (reference: sms-compliance.md §3.4–3.5, crmtext-api.md §4).
"""

from __future__ import annotations

import re
from enum import StrEnum


class Intent(StrEnum):
    STOP = "stop"  # STOP/QUIT: CRM Text has already opted the customer out
    REVOKE = "revoke"  # another revocation word: smsbridge must call optoutcustomer
    SOFT_STOP = "soft_stop"  # sounds like "stop texting me": staff decide
    HELP = "help"
    START = "start"
    NONE = ""


HANDLED_BY_CRMTEXT = {"STOP", "QUIT"}
REVOCATION_WORDS = {
    "END",
    "REVOKE",
    "OPT OUT",
    "OPTOUT",
    "CANCEL",
    "UNSUBSCRIBE",
    "STOPALL",
    "STOP ALL",
}
HELP_WORDS = {"HELP", "INFO"}
START_WORDS = {"START", "UNSTOP", "YES", "Y"}

SOFT_STOP = re.compile(
    r"""
      \b(?:stop|quit|cease)\s+(?:text|texting|messag|send|contact|spam)   # stop texting me
    | \b(?:don'?t|do\s+not|no\s+more)\s+(?:text|message|contact|sms)      # don't text me
    | \bremove\s+(?:me|my\s+(?:number|phone))                             # remove me
    | \btake\s+me\s+off                                                   # take me off your list
    | \bunsubscribe\s+me\b
    | \bwrong\s+(?:number|person)\b
    | \bleave\s+me\s+alone\b
    | \bno\s+m[aá]s\b                                                     # Spanish: no more
    | \bplease\s+stop\b
    """,
    re.IGNORECASE | re.VERBOSE,
)


_WORD = re.compile(r"\w")


def normalise(text: str) -> str:
    """Upper-case, hyphens as spaces, surrounding punctuation and extra spaces removed."""
    words = re.sub(r"[\s\-_]+", " ", text).strip()
    # Linear time: `[^\w]+$` was tried at every position of a long run of punctuation
    # (quadratic: 74 s for "a" + "!" * 60000 + "a", issue 10).
    first = _WORD.search(words)
    if first is None:
        return ""
    last = _WORD.search(words[::-1])
    assert last is not None
    return words[first.start() : len(words) - last.start()].upper()


def classify(text: str) -> Intent:
    """The consent meaning of a whole inbound message."""
    word = normalise(text)
    if word in HANDLED_BY_CRMTEXT:
        return Intent.STOP
    if word in REVOCATION_WORDS:
        return Intent.REVOKE
    if word in HELP_WORDS:
        return Intent.HELP
    if word in START_WORDS:
        return Intent.START
    if SOFT_STOP.search(text):
        return Intent.SOFT_STOP
    return Intent.NONE
