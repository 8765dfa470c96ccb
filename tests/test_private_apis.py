"""Libraries are used through their public APIs; the measured exceptions live in app/core/adapters/."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADAPTER = ROOT / "app" / "core" / "adapters"
LIBRARIES = "redis|litestar|aiosqlite|sqlalchemy|dramatiq"

REACH_INS = {
    "a private module or name": re.compile(rf"\b(?:{LIBRARIES})(?:\.\w+)*\._\w+"),
    "a private name imported": re.compile(
        rf"^\s*from\s+(?:{LIBRARIES})[\w.]*\s+import\s+\(?\s*(?:\w+\s*,\s*)*_\w+", re.M
    ),
    "aiosqlite's connection internals": re.compile(r"(?<!self)\._(?:execute|running|thread)\b|\bdef _execute\b"),
    "SQLAlchemy's dialect serializer": re.compile(r"\b_json_serializer\b"),
    "a class swapped on an instance": re.compile(r"\.__class__\s*=(?!=)"),
    "redis-py's packing overridden": re.compile(r"\bdef pack_command\b"),
}


def reach_ins(text: str) -> list[str]:
    return [what for what, pattern in REACH_INS.items() if pattern.search(text)]


def test_no_private_library_internals_outside_the_adapter() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {what}"
        for package in ("app", "workers", "storage")
        for path in sorted((ROOT / package).rglob("*.py"))
        if ADAPTER not in path.parents
        for what in reach_ins(path.read_text())
    ]
    assert offenders == [], (
        "private internals of litestar, aiosqlite, redis, sqlalchemy or dramatiq used outside "
        "app/core/adapters/ (use a public API, or move the reach-in there with the figure that "
        f"justifies it): {offenders}"
    )


def test_the_grep_sees_each_kind_of_reach_in() -> None:
    """The patterns above catch what they are meant to (else the first test proves nothing)."""
    samples = {
        "from redis._parsers.base import BaseParser": "a private module or name",
        "from litestar.utils import _private": "a private name imported",
        "connection._thread.daemon = True": "aiosqlite's connection internals",
        "return await super()._execute(fn)": "aiosqlite's connection internals",
        "getattr(dialect, '_json_serializer', None)": "SQLAlchemy's dialect serializer",
        "response.__class__ = Other": "a class swapped on an instance",
        "    def pack_command(self, *args):": "redis-py's packing overridden",
        "from dramatiq.asyncio import _event_loop_thread": "a private name imported",
    }
    for text, what in samples.items():
        assert what in reach_ins(text), text
    for part in ("__init__.py", "sqlite.py"):
        assert reach_ins((ADAPTER / part).read_text()), f"the adapter's {part} is where reach-ins are"
