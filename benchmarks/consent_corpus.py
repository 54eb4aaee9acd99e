"""How well smsbridge reads revocations: ``python -m benchmarks.consent_corpus`` (prints only).

Reads the labelled corpus ``tests/corpus/consent.tsv`` (columns text, label, group; label
``revoke`` or ``ordinary``) with :func:`bridge.keywords.read` and prints, per group and in
total: texts, automatic opt-outs, flagged for staff, precision and recall of "acted on"
(automatic or flagged) as a revocation. Then the same for ``consent_holdout.tsv``: 50 texts
written after the rules and never used to change them, an honest estimate for unseen wording.
``--misses`` also lists every text read wrongly.
The targets (issue 9; ``tests/test_consent_corpus.py`` asserts them): opt-out words however
decorated 100 % automatic; other revocations at least 95 % acted on; ordinary texts at most
2 % flagged.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bridge.keywords import Intent, read

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus" / "consent.tsv"
HOLDOUT = ROOT / "tests" / "corpus" / "consent_holdout.tsv"
AUTOMATIC = (Intent.STOP, Intent.REVOKE)


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # "revoke" or "ordinary"
    group: str


@dataclass
class Tally:
    texts: int = 0
    revocations: int = 0
    automatic: int = 0
    flagged: int = 0
    true_hits: int = 0  # revocations acted on
    false_hits: int = 0  # ordinary texts acted on
    wrong: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, example: Example, intent: Intent, rule: str) -> None:
        acted = intent in AUTOMATIC or intent is Intent.SOFT_STOP
        self.texts += 1
        self.automatic += intent in AUTOMATIC
        self.flagged += intent is Intent.SOFT_STOP
        if example.label == "revoke":
            self.revocations += 1
            self.true_hits += acted
            if not acted:
                self.wrong.append((example.text, "missed", rule))
        else:
            self.false_hits += acted
            if acted:
                self.wrong.append((example.text, f"false {intent.value}", rule))

    @property
    def precision(self) -> float | None:
        hits = self.true_hits + self.false_hits
        return self.true_hits / hits if hits else None

    @property
    def recall(self) -> float | None:
        return self.true_hits / self.revocations if self.revocations else None


def load(path: Path = CORPUS) -> list[Example]:
    with path.open(encoding="utf-8", newline="") as f:
        return [
            Example(r["text"], r["label"], r["group"])
            for r in csv.DictReader(f, dialect="excel-tab")
        ]


def tally(examples: list[Example]) -> dict[str, Tally]:
    """Per group, plus ``"total"``."""
    groups: dict[str, Tally] = defaultdict(Tally)
    for example in examples:
        reading = read(example.text)
        groups[example.group].add(example, reading.intent, reading.rule)
        groups["total"].add(example, reading.intent, reading.rule)
    return dict(groups)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def report(path: Path, misses: bool) -> None:
    groups = tally(load(path))
    print(f"corpus: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    print(f"{'group':<14}{'texts':>6}{'auto':>6}{'flag':>6}{'precision':>11}{'recall':>9}")
    for name in sorted(groups, key=lambda g: (g == "total", g == "ordinary", g)):
        t = groups[name]
        print(
            f"{name:<14}{t.texts:>6}{t.automatic:>6}{t.flagged:>6}"
            f"{_pct(t.precision):>11}{_pct(t.recall):>9}"
        )
    total, ordinary = groups["total"], groups.get("ordinary", Tally())
    words = groups.get("optout_word", Tally())
    others = [t for g, t in groups.items() if g not in ("total", "ordinary", "optout_word")]
    revs = sum(t.revocations for t in others)
    acted = sum(t.true_hits for t in others)
    if words.texts:
        print(
            f"opt-out words automatic: {words.automatic}/{words.texts}"
            f" ({_pct(words.automatic / words.texts)}; target 100 %)"
        )
    print(
        f"other revocations acted on: {acted}/{revs}"
        f" ({_pct(acted / revs if revs else None)}; target >= 95 %)"
    )
    print(
        f"ordinary texts flagged or opted out: {ordinary.false_hits}/{ordinary.texts}"
        f" ({_pct(ordinary.false_hits / ordinary.texts if ordinary.texts else None)};"
        " target <= 2 %)"
    )
    print(f"all: precision {_pct(total.precision)}, recall {_pct(total.recall)}")
    if misses:
        for name, t in sorted(groups.items()):
            if name != "total":
                for text, what, rule in t.wrong:
                    print(f"  {name:<14}{what:<16}{text!r}  {rule}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="only this corpus (default: both)")
    parser.add_argument("--misses", action="store_true", help="list every text read wrongly")
    args = parser.parse_args(argv)
    for n, path in enumerate([args.corpus] if args.corpus else [CORPUS, HOLDOUT]):
        if n:
            print("\nheld out (written after the rules, never used to change them):")
        report(path, args.misses)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
