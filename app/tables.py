"""Imports every table model so `SQLModel.metadata` is complete (Alembic, tests)."""

from app.accounts.models import Account, ApiKey
from app.channels.models import Channel, ChannelModel
from app.jobs.models import Job

__all__ = ["Account", "ApiKey", "Channel", "ChannelModel", "Job"]
