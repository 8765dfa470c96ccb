"""POST /v1/videos takes multipart/form-data too (the OpenAI SDK always sends it, `input_reference` as
a file); Litestar documents one media type per body, so the operation adds the second one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from app.jobs.schemas import MAX_PROMPT
from app.media.videos import VideoSize

_TEXT = OpenAPIType.STRING
MULTIPART = Schema(
    type=OpenAPIType.OBJECT,
    required=["prompt"],
    properties={
        "prompt": Schema(type=_TEXT, max_length=MAX_PROMPT),
        "model": Schema(type=_TEXT, max_length=200),
        "seconds": Schema(type=_TEXT, pattern=r"^[0-9]{1,2}$"),
        "size": Schema(type=_TEXT, enum=list(get_args(VideoSize))),
        "input_reference": Schema(type=_TEXT, format=OpenAPIFormat.BINARY, description="An image to start from."),
        "webhook_url": Schema(type=_TEXT, max_length=2000),
    },
    description="The JSON body's fields as form fields; `metadata[KEY]` fields set metadata, "
    "`webhook_events[]` (repeated) the event types.",
)


@dataclass
class JsonOrMultipart(Operation):
    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.content["multipart/form-data"] = OpenAPIMediaType(schema=MULTIPART)
