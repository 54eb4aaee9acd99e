"""The labelled corpus (tests/corpus/consent.tsv) read the way inbound texts are read.

Targets (issue 9): the opt-out words alone, however decorated, 100 % automatic; revocations in
other words at least 95 % acted on (automatic or flagged for staff); ordinary texts at most 2 %
flagged. ``python -m benchmarks.consent_corpus`` prints the per-group figures.
"""

from __future__ import annotations

from collections import Counter

import pytest

from benchmarks.consent_corpus import CORPUS, Example, load
from bridge.keywords import MAX_CHARS, Intent, classify, fold

AUTOMATIC = (Intent.STOP, Intent.REVOKE)
ACTED = (*AUTOMATIC, Intent.SOFT_STOP)


@pytest.fixture(scope="module")
def corpus() -> list[Example]:
    return load(CORPUS)


def test_the_corpus_is_labelled_and_large_enough(corpus: list[Example]) -> None:
    assert len(corpus) >= 300
    assert {e.label for e in corpus} == {"revoke", "ordinary"}
    groups = Counter(e.group for e in corpus)
    assert groups["ordinary"] >= 100 and groups["optout_word"] >= 40
    assert {"multiword", "paraphrase", "typo", "wrong_number", "spanish", "french"} <= set(groups)
    assert len({e.text for e in corpus}) == len(corpus)  # no text counted twice


def test_opt_out_words_however_decorated_are_all_automatic(corpus: list[Example]) -> None:
    words = [e for e in corpus if e.group == "optout_word"]
    missed = [e.text for e in words if classify(e.text) not in AUTOMATIC]
    assert missed == []


def test_revocations_in_other_words_are_acted_on_95_percent(corpus: list[Example]) -> None:
    others = [e for e in corpus if e.label == "revoke" and e.group != "optout_word"]
    acted = [e for e in others if classify(e.text) in ACTED]
    assert len(acted) / len(others) >= 0.95, [e.text for e in others if e not in acted]


def test_ordinary_texts_are_flagged_at_most_2_percent(corpus: list[Example]) -> None:
    ordinary = [e for e in corpus if e.label == "ordinary"]
    flagged = [e.text for e in ordinary if classify(e.text) in ACTED]
    assert len(flagged) / len(ordinary) <= 0.02, flagged


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("STOP", Intent.STOP),  # CRM Text acts on the bare word itself
        (" quit ", Intent.STOP),
        ("Stop.", Intent.REVOKE),  # CRM Text does not: smsbridge must
        ("🛑STOP🛑", Intent.REVOKE),
        ("Ｓｔｏｐ", Intent.REVOKE),
        (" s t o p ", Intent.REVOKE),
        ("stop please", Intent.REVOKE),
        ("ALTO", Intent.REVOKE),
        ("ARRÊT", Intent.REVOKE),
        ("don’t text me", Intent.SOFT_STOP),
        ("please stop texting me", Intent.SOFT_STOP),
        ("cancel please", Intent.SOFT_STOP),
        ("please stop by after 5", Intent.NONE),
        ("cancel my order", Intent.NONE),
        ("end of the day", Intent.NONE),
        ("Don't text while driving lol", Intent.NONE),
        ("Please don't remove me, I like the deals", Intent.NONE),
        ("START", Intent.START),
        ("help!", Intent.HELP),
    ],
)
def test_examples_from_the_issue(text: str, intent: Intent) -> None:
    assert classify(text) is intent


def test_a_long_text_is_read_only_up_to_the_bound() -> None:
    """Bounded work: only the first MAX_CHARS characters are read, so a 100,000-character text
    costs what a short one does, and what lies past the bound cannot change the reading."""
    assert len(fold("a " * 50_000)) == MAX_CHARS // 2
    assert classify("x" * MAX_CHARS + " stop texting me") is Intent.NONE
