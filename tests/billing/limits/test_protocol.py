"""The Lua scripts and app/limits/protocol.py name the same KEYS, ARGV and results in the same order, and
each script reads ARGV[i] into the local that its i-th name says."""

from __future__ import annotations

import re
from typing import NamedTuple

import pytest

from app.billing.limits.protocol import AdmitArgs, AdmitKeys, AdmitResult, SettleArgs, SettleKeys
from app.billing.limits.service import load_script

LOCAL = re.compile(r"^local ([\w, ]+?) = (.+)$", re.MULTILINE)
ARGV = re.compile(r"ARGV\[(\d+)\]")


def declared(source: str, section: str) -> list[str]:
    line = re.search(rf"^-- {section}: (.+)$", source, re.MULTILINE)
    assert line, f"no '-- {section}:' line"
    return line[1].split()


def argv_locals(source: str) -> dict[int, str]:
    """`local a, b = ARGV[1], tonumber(ARGV[2])` → {1: "a", 2: "b"}."""
    found: dict[int, str] = {}
    for names, values in LOCAL.findall(source):
        for name, value in zip([n.strip() for n in names.split(",")], values.split(","), strict=False):
            index = ARGV.search(value)
            if index:
                found[int(index[1])] = name
    return found


CASES: list[tuple[str, type[NamedTuple], type[NamedTuple], type[NamedTuple] | None]] = [
    ("admit.lua", AdmitKeys, AdmitArgs, AdmitResult),  # type: ignore[list-item]
    ("settle.lua", SettleKeys, SettleArgs, None),  # type: ignore[list-item]
]


@pytest.mark.parametrize(("script", "keys", "args", "result"), CASES, ids=[c[0] for c in CASES])
def test_lua_and_python_name_the_same_fields(
    script: str, keys: type[NamedTuple], args: type[NamedTuple], result: type[NamedTuple] | None
) -> None:
    source = load_script(script)
    assert declared(source, "KEYS") == list(keys._fields)
    assert declared(source, "ARGV") == list(args._fields)
    if result is not None:
        assert declared(source, "RETURNS") == list(result._fields)
    reads = argv_locals(source)
    assert sorted(reads) == list(range(1, len(args._fields) + 1)), reads
    assert [reads[i] for i in sorted(reads)] == list(args._fields)


def returned_tables(source: str) -> list[list[str]]:
    """The items of every `return {…}` (split at the commas outside parentheses)."""
    tables = []
    for start in (m.end() for m in re.finditer(r"return \{", source)):
        items, depth, item = [], 0, ""
        for char in source[start:]:
            if char == "}" and depth == 0:
                break
            depth += {"(": 1, ")": -1}.get(char, 0)
            if char == "," and depth == 0:
                items.append(item.strip())
                item = ""
            else:
                item += char
        tables.append([*items, item.strip()])
    return tables


def test_every_answer_of_admit_has_all_its_fields() -> None:
    tables = returned_tables(load_script("admit.lua"))
    assert len(tables) >= 6
    for table in tables:
        assert len(table) == len(AdmitResult._fields), table
