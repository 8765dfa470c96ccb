"""Channels: one upstream (provider type, base URL, secret) and the models it serves."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Column, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.db import JSONType, UTCDateTime, utcnow


class ProviderType(enum.StrEnum):
    LOCAL = "local"
    OPENAI = "openai"
    """Any OpenAI-compatible API (OpenAI, DeepSeek, vLLM, Groq, …), incl. its images and videos APIs."""
    ANTHROPIC = "anthropic"
    """Anthropic's Messages API (base URL https://api.anthropic.com/v1), translated both ways."""
    GEMINI = "gemini"
    """Google's Gemini API (base URL https://generativelanguage.googleapis.com/v1beta), translated both ways."""
    RUNWAY = "runway"
    """Runway's video API (task-style: create → task id → poll → result URL)."""
    KLING = "kling"
    """Kling's official API (JWT from the access key and secret key; text2video, image2video, images)."""
    STABILITY = "stability"
    """Stability AI's Stable Image API (SD 3.5, Core, Ultra: one synchronous call per image)."""
    BFL = "bfl"
    """Black Forest Labs' Flux API (submit, then poll the answer's `polling_url`)."""
    MIDJOURNEY = "midjourney"
    """An unofficial Midjourney relay speaking the midjourney-proxy API (`/mj/submit/imagine`, …)."""
    FAL = "fal"
    """fal's queue API (`queue.fal.run/{model id}`): any fal image or video model."""
    REPLICATE = "replicate"
    """Replicate's predictions API: any model (`owner/name`) or version (`owner/name:version`)."""


class Channel(SQLModel, table=True):
    __tablename__ = "channels"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(sa_column=Column(String(200), unique=True, nullable=False))
    provider: str = Field(max_length=40)
    base_url: str | None = Field(default=None, max_length=500)
    secret_encrypted: str | None = Field(default=None)
    """The upstream API key, encrypted with the instance secret (app.core.crypto)."""
    priority: int = Field(default=0)
    weight: int = Field(default=1)
    enabled: bool = Field(default=True)
    options: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ChannelModel(SQLModel, table=True):
    __tablename__ = "channel_models"
    __table_args__ = (UniqueConstraint("channel_id", "model", name="uq_channel_models_channel_model"),)

    id: int | None = Field(default=None, primary_key=True)
    channel_id: str = Field(foreign_key="channels.id", index=True, max_length=40, ondelete="CASCADE")
    model: str = Field(index=True, max_length=200)
    """The public model id clients ask for."""
    upstream_model: str = Field(max_length=200)
    """The name sent upstream (an alias when it differs from `model`)."""
    options: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
