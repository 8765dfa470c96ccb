"""The one place object keys are made: every file of a job lives under its id."""

from __future__ import annotations

import re

_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")


def object_key(job_id: str, name: str) -> str:
    """`media/<job id>/<name>`, e.g. `media/video_01J…/video.mp4`. Deterministic, so a retried upload
    overwrites its own earlier attempt instead of leaving a second object."""
    if not _SAFE.match(job_id) or not _SAFE.match(name):
        raise ValueError(f"unsafe object key part: {job_id!r}/{name!r}")
    return f"media/{job_id}/{name}"


def job_prefix(job_id: str) -> str:
    return object_key(job_id, "x")[:-1]
