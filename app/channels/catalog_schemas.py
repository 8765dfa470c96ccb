"""OpenAI's `Model` and the list of them (documentation Structs)."""

from __future__ import annotations

from typing import Literal

import msgspec


class ModelObject(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(msgspec.Struct, kw_only=True):
    object: Literal["list"]
    data: list[ModelObject]
