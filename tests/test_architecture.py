"""Import rules that keep the layers apart, checked on the source (ast), not by convention.

* ``bridge/`` is the SMS domain: it never imports Slack (slack_bolt, slack_sdk) or ``bot``.
* ``bot/dev/`` holds the local stand-ins (fake Slack, fake CRM Text, demo): only the CLI and the
  tests may import it, so nothing that runs in production depends on a fake.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def offenders(folder: str, forbidden: tuple[str, ...], allowed: set[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if any(relative.startswith(prefix) for prefix in allowed):
            continue
        bad = {
            name
            for name in imports_of(path)
            if any(name == f or name.startswith(f + ".") for f in forbidden)
        }
        if bad:
            found[relative] = bad
    return found


def test_bridge_never_imports_slack_or_bot() -> None:
    assert offenders("bridge", ("slack_bolt", "slack_sdk", "bot"), set()) == {}


def test_only_the_cli_and_tests_import_the_dev_stand_ins() -> None:
    assert offenders("bot", ("bot.dev",), {"bot/dev/", "bot/cli.py"}) == {}
    assert offenders("bridge", ("bot.dev",), set()) == {}


def test_the_rules_catch_an_offender(tmp_path: Path) -> None:
    """The checker itself sees a nested import (so the two tests above can fail)."""
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    from bot.dev.fake_slack import FakeSlack\n    import slack_sdk\n"
    )
    assert {"bot.dev.fake_slack", "slack_sdk"} <= imports_of(module)
