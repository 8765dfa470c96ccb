"""`POST /v1/embeddings`: the typed request (OpenAI's four `input` forms). Unknown fields pass upstream."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from app.core.edge import INT32_MAX, Name, NonEmptyText, Text
from app.core.errors import InvalidRequest

MAX_INPUTS = 2048
Token = Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)]
TokenArray = Annotated[list[Token], msgspec.Meta(min_length=1)]
# msgspec takes one array type per union: a list's items are checked for one form in `check`.
Input = (
    NonEmptyText | Annotated[list[NonEmptyText | TokenArray | Token], msgspec.Meta(min_length=1, max_length=MAX_INPUTS)]
)


class EmbeddingRequest(msgspec.Struct, kw_only=True):
    model: Name
    input: Input
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, msgspec.Meta(ge=1, le=65_536)] | None = None
    user: Text | None = None

    @property
    def inputs(self) -> int:
        """How many embeddings the request asks for."""
        value = self.input
        if isinstance(value, str) or isinstance(value[0], int):
            return 1
        return len(value)

    def check(self) -> None:
        """A list is one token array (integers) or a list of strings and token arrays, not a mix."""
        value = self.input
        if isinstance(value, str):
            return
        tokens = isinstance(value[0], int)
        for i, item in enumerate(value):
            if isinstance(item, int) != tokens:
                expected = "an integer (a token)" if tokens else "a string or an array of integers"
                raise InvalidRequest(
                    f"Invalid type for 'input[{i}]': expected {expected}.", param=f"input[{i}]", code="invalid_type"
                )


class Embedding(msgspec.Struct, kw_only=True):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str
    """Floats, or base64 of little-endian float32 with `encoding_format: base64`."""


class EmbeddingUsage(msgspec.Struct, kw_only=True):
    prompt_tokens: int
    total_tokens: int
    cost: int | None = None


class EmbeddingList(msgspec.Struct, kw_only=True):
    """The answer (documentation; the upstream's object is relayed with the cost in its usage)."""

    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage | None = None
