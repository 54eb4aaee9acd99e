"""What an inbound text means for consent: opt-out words however decorated, revocations in the
customer's own words, HELP, START.

Per the FCC's 2025 revocation rule (sms-compliance.md §3.4–3.5) the whole-message words STOP,
QUIT, END, REVOKE, OPT OUT, CANCEL and UNSUBSCRIBE revoke consent, and so does any wording a
reasonable person would read as a revocation. CRM Text itself acts only on the bare words STOP
and QUIT (crmtext-api.md §4); everything else is smsbridge's job.

How a text is read (linear in its length; only the first :data:`MAX_CHARS` characters count):

1. It is folded: Unicode NFKC (full-width letters become plain), curly apostrophes become
   straight ones, accents and case are dropped, and it is cut into words of letters and digits,
   so punctuation, emoji, symbols and spacing go ("🛑STOP🛑", "Ｓｔｏｐ", " s t o p ").
2. **Automatic** (:attr:`Intent.STOP` / :attr:`Intent.REVOKE`): the whole text is an opt-out
   word (also run together, spelled out or stretched: "opt-out", "S-T-O-P", "stooop"), a
   well-known misspelling of one ("unsub", "stpo"), a clear opt-out keyword in Spanish or
   French (ALTO, BAJA, PARAR, CANCELAR, ARRET, DÉSABONNER), or one of those with only
   politeness around it ("stop please", "unsubscribe me", "alto por favor"), except CANCEL
   and END: "cancel please" may be an order.
3. **Flagged for staff** (:attr:`Intent.SOFT_STOP`): a revocation phrase somewhere in the text
   ("stop texting", "take me off your list", "lose my number", "don't text me", "wrong
   number", "no más mensajes", "arrêtez de m'envoyer"), a whole text one typing slip away
   from an opt-out word ("cancle", "stoop"), a last sentence that is one ("This is spam.
   Stop."), or a stop sign emoji alone. Phrases are matched word by word against a fixed
   table (no backtracking regular expressions), and a phrase right after "don't"/"never" is
   not one ("please don't remove me").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from itertools import groupby, product


class Intent(StrEnum):
    STOP = "stop"  # bare STOP/QUIT: CRM Text opts the customer out by itself
    REVOKE = "revoke"  # any other revocation read as certain: smsbridge calls optoutcustomer
    SOFT_STOP = "soft_stop"  # may be a request to stop: staff decide (Opt out / Not a stop request)
    HELP = "help"
    START = "start"
    NONE = ""


MAX_CHARS = 640  # a revocation is short; a longer text is read up to here (bounded work)
HANDLED_BY_CRMTEXT = frozenset({"STOP", "QUIT"})  # exactly as CRM Text matches: bare, any case

# Whole-message words, folded and run together ("OPT OUT" -> "optout").
OPT_OUT_WORDS = frozenset(
    {"stop", "quit", "end", "revoke", "optout", "cancel", "unsubscribe", "stopall"}
)
COMMON_TYPOS = frozenset(
    {
        "unsub", "unsubs", "unsubscibe", "unsubcribe", "unsuscribe", "unsubsribe", "unsubscrib",
        "unsubscirbe", "unsubscrbe", "unsubscriibe", "unsubscribee", "stpo", "sotp", "stopp",
        "sstop", "stoppp", "stopit", "optou", "optuot",
    }
)  # fmt: skip
# Spanish and French opt-out keywords (CTIA/CWTA practice: ALTO/BAJA in the US, ARRET in Canada).
FOREIGN_WORDS = frozenset(
    {
        "alto", "baja", "parar", "cancelar", "detener", "desuscribir", "desuscribirme",
        "arret", "arreter", "arretez", "arrete", "desabonner", "desabonnez", "desabonnement",
        "desinscrire",
    }
)  # fmt: skip
AUTOMATIC_WORDS = OPT_OUT_WORDS | COMMON_TYPOS | FOREIGN_WORDS
NARROW_WORDS = frozenset({"cancel", "end", "cancelar"})  # automatic alone only ("cancel please")
HELP_WORDS = frozenset({"help", "info"})
START_WORDS = frozenset({"start", "unstop", "yes", "y"})

TEXTS = frozenset(
    {
        "text", "texts", "texting", "txt", "txts", "txting", "sms", "message", "messages",
        "messaging", "msg", "msgs", "spam", "spamming", "sending", "contacting", "alerts",
        "promos", "promotions", "notifications", "marketing", "mensaje", "mensajes", "textos",
        "msj", "msjs", "texto", "msging", "msgng", "texing", "txtin", "sendin", "communication",
        "communications",
    }
)  # fmt: skip
POLITE = frozenset(
    {
        "please", "pls", "plz", "plse", "pleas", "thanks", "thank", "you", "thx", "ty", "now",
        "asap", "immediately", "already", "all", "it", "ok", "okay", "just", "me", "us", "por",
        "favor", "porfa", "gracias", "ya", "svp", "merci", "moi", "sil", "vous", "plait",
    }
)  # fmt: skip
NEGATIONS = frozenset({"dont", "never", "not", "cant", "wont", "didnt", "doesnt"})
TOKEN_TYPOS = {
    "remvoe": "remove", "reomve": "remove", "textin": "texting", "textng": "texting",
    "txting": "texting", "stpo": "stop", "sotp": "stop", "unsubscibe": "unsubscribe",
    "unsubcribe": "unsubscribe", "unsuscribe": "unsubscribe", "unsubsribe": "unsubscribe",
}  # fmt: skip
# Whole texts (folded, politeness removed) that may be a request to stop.
WHOLE_FLAGS = frozenset(
    {
        "not interested",
        "no longer interested",
        "no more",
        "no mas",
        "nomas",
        "enough",
        "halt",
        "cease",
        "basta",
        "not interested anymore",
        "remove",
        "delete",
        "unsubscribed",
    }
)
# Near misses that are ordinary words, never read as a typing slip.
REAL_WORDS = frozenset(
    {
        "shop", "step", "atop", "stow", "slop", "top", "sop", "spot", "stem", "stops", "post",
        "pots", "tops", "quiz", "quite", "quiet", "suit", "and", "ed", "en", "send", "bend",
        "lend", "mend", "tend", "fend", "ends", "cancer", "candle", "camel", "revoked", "end",
        "opt", "stoped", "start",
    }
)  # fmt: skip
STOP_SIGNS = frozenset("\U0001f6d1\u26d4\U0001f6ab")  # 🛑 ⛔ 🚫 with no words: staff decide
FUZZY_TARGETS = ("stop", "quit", "cancel", "revoke", "optout", "unsubscribe", "unsub")

# Phrases: words separated by spaces; "a|b" alternatives, "?" after a slot makes it optional,
# "*" any one word, "$" the end of the text, NAME a word set below.
_SETS: dict[str, frozenset[str]] = {
    "TEXTS": TEXTS,
    "VERB": frozenset({"stop", "quit", "cease", "end", "halt", "stpo", "sotp"}),
    "GLUE": frozenset(
        {
            "sending",
            "getting",
            "receiving",
            "me",
            "the",
            "these",
            "those",
            "all",
            "your",
            "ur",
            "my",
            "this",
            "any",
            "with",
            "of",
            "them",
            "more",
        }
    ),  # fmt: skip
    "TXVERB": frozenset(
        {"text", "txt", "message", "msg", "contact", "sms", "send", "texting", "messaging", "call"}
    ),
    "WHOM": frozenset({"me", "us", "this", "again", "anymore", "any", "$"}),
    "DET": frozenset({"your", "the", "this", "ur", "these", "that", "my", "their", "all", "any"}),
    "LIST": frozenset({"list", "lists", "texting", "mailing", "distribution", "contact", "$"})
    | TEXTS,
    "WRONG": frozenset({"number", "person", "guy", "girl", "phone", "cell"}),
}
PHRASES = (
    # English
    "VERB TEXTS",
    "VERB GLUE GLUE? GLUE? TEXTS",
    "VERB bothering|contacting|calling|spamming|harassing me|us",
    "said stop|quit|unsubscribe",
    "cancel DET? TEXTS|subscription|subscriptions",
    "unsubscribe|unsub|optout",
    "opt out",
    "opt me|us out",
    "dont|never TXVERB WHOM",
    "do not TXVERB WHOM",
    "dont|never TXVERB me|us again|anymore",
    "dont|never want DET? any? more? TEXTS",
    "do not want DET? any? more? TEXTS",
    "dont|never send me|us DET? any? more? TEXTS",
    "no more TEXTS",
    "no more text messages",
    "remove|delete|lose|erase|forget me|us",
    "remove|delete|lose|erase|forget DET number|phone|contact|cell|info|name|details",
    "be|get|being removed|unsubscribed|deleted",
    "off DET list|lists $|please|pls|now|thanks|asap",
    "off your|ur list|lists",
    "asked|told|said you|u? to? stop|unsubscribe|quit",
    "why do|are|does you|u keep|still? TEXTS",
    "no mas $",
    "stop|cancel|end DET? subscription|subscriptions",
    "cease and desist",
    "please|pls|plz|just stop $",
    "no longer want|wish|need to? receive|get? DET? any? TEXTS",
    "dont|never want to? get|receive these|those|them|any|your TEXTS|anymore|more|$",
    "do not want to? get|receive these|those|them|any|your TEXTS|anymore|more|$",
    "you|u can stop now? $",
    "not the right person|number",
    "not interested anymore|any",
    "basta ya|de",
    "take|get|put me|us off DET? LIST",
    "take|get DET number off",
    "leave me|us alone|out",
    "leave DET number|phone alone",
    "revoke|revoking|revoked",
    "TEXTS to stop|end|cease",
    "enough DET? TEXTS",
    "number doesnt|isnt belong",
    "number does|is not belong",
    "menvoyez|menvoyer|mecrivez|mecrire plus",
    "never signed|sign up",
    "didnt|did not sign|signed up",
    "never subscribed|agreed|opted",
    "how|where did|do you get my number",
    "who gave you my number",
    "enough with|of DET? TEXTS",
    "done with DET? TEXTS",
    "wrong WRONG",
    "wrong #",
    "not my number",
    "no one|nobody|noone by|named that name?",
    "no * at|on this number",
    "not|isnt * number anymore|$",
    # Spanish (accents folded)
    "no mas TEXTS",
    "no me|nos manden|mande|envien|envie|mandes|envies|escriban|escribas|contacten|textees",
    "dejen|deje|deja|dejar|dejes de enviar|enviarme|mandar|mandarme|escribir|escribirme|mandarnos",
    "de baja",
    "numero equivocado|incorrecto",
    "persona equivocada",
    "no quiero recibir|mas|TEXTS",
    "borrenme|borrame|saquenme|sacame|quitenme|quitame|eliminenme",
    "cancelar DET? suscripcion|TEXTS",
    # French (accents folded)
    "arretez|arrete|arreter|arretes de|les|menvoyer|mecrire|TEXTS",
    "ne|veux plus recevoir|de",
    "veux plus",
    "me|se desabonner|desinscrire",
    "mauvais numero",
)

_APOSTROPHES = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'", "`": "'", "\u00b4": "'"}
)
_WORD = re.compile(r"[^\W_]+|#")  # "#" kept for "wrong #"


@dataclass(frozen=True)
class Reading:
    """What a text means and which rule said so (the benchmark prints the rules)."""

    intent: Intent
    rule: str


def fold(text: str) -> list[str]:
    """The text's words, folded: NFKC, no accents, case-folded, apostrophes dropped inside
    words ("don’t" -> "dont"), "#" after "wrong" read as "number"."""
    flat = unicodedata.normalize("NFKC", text[:MAX_CHARS]).translate(_APOSTROPHES)
    flat = "".join(
        c for c in unicodedata.normalize("NFKD", flat) if not unicodedata.combining(c)
    ).casefold()
    words = _WORD.findall(flat.replace("'", ""))
    return [TOKEN_TYPOS.get(w, w) for w in words]


def normalise(text: str) -> str:
    """The text's words folded and upper-cased, for the ledger ("🛑Stop!!", "s t o p" ->
    "STOP")."""
    words = [w for w in fold(text) if w != "#"]
    spelled = len(words) > 1 and all(len(w) == 1 for w in words)  # " s t o p "
    return ("" if spelled else " ").join(words).upper()[:80]


def classify(text: str) -> Intent:
    """The consent meaning of a whole inbound message."""
    return read(text).intent


def read(text: str) -> Reading:
    """:func:`classify`, with the rule that decided."""
    if text.strip().upper() in HANDLED_BY_CRMTEXT:
        return Reading(Intent.STOP, "bare STOP/QUIT (CRM Text acts)")
    words = fold(text)
    plain = [w for w in words if w != "#"]
    joined = "".join(plain)
    if joined in START_WORDS:
        return Reading(Intent.START, "start word")
    if joined in HELP_WORDS:
        return Reading(Intent.HELP, "help word")
    if _squeeze(joined) in SQUEEZED or (len(set(plain)) == 1 and plain[0] in AUTOMATIC_WORDS):
        return Reading(Intent.REVOKE, "opt-out word, decorated")
    core = [w for w in plain if w not in POLITE]
    word = core[0] if len(set(core)) == 1 else "".join(core)  # "stop stop please"
    if core and _squeeze(word) in SQUEEZED:
        if SQUEEZED[_squeeze(word)] not in NARROW_WORDS:
            return Reading(Intent.REVOKE, "opt-out word with politeness")
        return Reading(Intent.SOFT_STOP, "cancel/end with other words")
    if " ".join(core) in WHOLE_FLAGS or " ".join(plain) in WHOLE_FLAGS:
        return Reading(Intent.SOFT_STOP, "short refusal")
    phrase = _find_phrase(words)
    if phrase:
        return Reading(Intent.SOFT_STOP, f"phrase: {phrase}")
    candidate = "".join(core) or joined
    if 3 <= len(candidate) <= 14 and candidate not in REAL_WORDS and _near_miss(candidate):
        return Reading(Intent.SOFT_STOP, "one slip from an opt-out word")
    if not plain and STOP_SIGNS & set(text[:MAX_CHARS]):
        return Reading(Intent.SOFT_STOP, "a stop sign alone")
    if _ends_with_opt_out_word(text):
        return Reading(Intent.SOFT_STOP, "last sentence is an opt-out word")
    return Reading(Intent.NONE, "")


def _squeeze(word: str) -> str:
    """Runs of one letter as one ("stooooop", "STOPPP" -> "stop")."""
    return "".join(letter for letter, _ in groupby(word))


SQUEEZED = {_squeeze(w): w for w in AUTOMATIC_WORDS}
_SENTENCE_BREAK = re.compile(r"[.!?;\n]+")


def _ends_with_opt_out_word(text: str) -> bool:
    """ "This is spam. Stop.": the last of several sentences is an opt-out word."""
    sentences = [s for s in _SENTENCE_BREAK.split(text[:MAX_CHARS]) if fold(s)]
    if len(sentences) < 2:
        return False
    last = [w for w in fold(sentences[-1]) if w not in POLITE]
    return bool(last) and _squeeze("".join(last)) in SQUEEZED


# -- phrase table ------------------------------------------------------------------------

Slot = tuple[frozenset[str], bool]  # (words, optional)


def _compile(spec: str) -> tuple[Slot, ...]:
    slots = []
    for part in spec.split():
        optional = part.endswith("?") and part != "?"
        part = part.rstrip("?") if optional else part
        words: set[str] = set()
        for alt in part.split("|"):
            words |= _SETS.get(alt, frozenset({alt}))
        slots.append((frozenset(words), optional))
    return tuple(slots)


def _expand(slots: tuple[Slot, ...]) -> list[tuple[frozenset[str], ...]]:
    """Every way of leaving out the optional slots (each phrase has at most three)."""
    choices = [((s,), ()) if optional else ((s,),) for s, optional in slots]
    return [tuple(w for part in combo for w in part) for combo in product(*choices)]


_TABLE = [(spec, seq) for spec in PHRASES for seq in _expand(_compile(spec))]
_FIRST: dict[str, list[tuple[str, tuple[frozenset[str], ...]]]] = {}
for _spec, _seq in _TABLE:
    for _word in _seq[0] if "*" not in _seq[0] else {"*"}:
        _FIRST.setdefault(_word, []).append((_spec, _seq))


def _find_phrase(words: list[str]) -> str:
    """The first revocation phrase in ``words`` not right after a negation, or ''.
    Work: len(words) x the phrases starting with each word (a fixed table)."""
    padded = [*words, "$"]
    for i, word in enumerate(words):
        for spec, seq in _FIRST.get(word, []) + _FIRST.get("*", []):
            if i + len(seq) > len(padded):
                continue
            if all(
                padded[i + j] in slot or ("*" in slot and padded[i + j] != "$")
                for j, slot in enumerate(seq)
            ) and not _negated(words, i, seq):
                return spec
    return ""


def _negated(words: list[str], i: int, seq: tuple[frozenset[str], ...]) -> bool:
    """ "please don't remove me": a phrase right after a negation is not a request."""
    if seq[0] & NEGATIONS or seq[0] == frozenset({"do"}):
        return False
    return (i >= 1 and words[i - 1] in NEGATIONS) or words[max(0, i - 2) : i] == ["do", "not"]


def _near_miss(word: str) -> bool:
    return any(_within_one(word, target) for target in FUZZY_TARGETS) or (
        len(word) >= 9 and _distance(word, "unsubscribe", 2) <= 2
    )


def _within_one(a: str, b: str) -> bool:
    return abs(len(a) - len(b)) <= 1 and _distance(a, b, 1) <= 1


def _distance(a: str, b: str, cap: int) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance, words of at most 20 letters."""
    a, b = a[:20], b[:20]
    if abs(len(a) - len(b)) > cap:
        return cap + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], previous2[j - 2] + 1)
        previous2, previous = previous, row
    return previous[len(b)]
