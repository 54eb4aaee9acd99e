"""Slack's message markup to the plain text a phone shows."""

from __future__ import annotations

import html
import re

_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def to_plain(text: str) -> str:
    """``<https://x|x>`` → ``https://x``, ``<mailto:a@b|a@b>`` → ``a@b``, entities unescaped."""

    def link(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("mailto:"):
            return target.removeprefix("mailto:")
        if target.startswith(("@", "#", "!")):
            return label or ""
        return target

    return html.unescape(_LINK.sub(link, text)).strip()
