"""Settings: the only reader of os.environ. Unknown or malformed CRM_* settings stop the process."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class SettingsError(Exception):
    """The configuration is unusable; the message says which variable and why."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str = Field(
        default="sqlite:///data/crm.db",
        description="sqlite:///path/file.db (default) or postgresql://user@host:port/db")
    kafka_bootstrap: str | None = Field(default=None, description="unset = embedded mode")
    bootstrap_admin_key: str | None = None
    master_key: str | None = Field(default=None, description=(
        "base64 of 32 bytes wrapping the per-client data keys; on SQLite, default a key file "
        "beside the database (created on first start)"))
    timezone: str = "UTC"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    read_wait_seconds: float = Field(default=5.0, ge=0, le=60,
                                     description="longest a read waits for ?min_position")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576,
                                description="larger request bodies get 413")
    rate_limit_per_minute: int = Field(default=1200, ge=0,
                                       description="requests per API key per minute; 0 = off")
    cors_origins: str = Field(default="", description="comma-separated allowed origins; "
                                                       "empty = no cross-origin access")

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not (value.startswith("sqlite:///") or value.startswith("postgresql://")
                or value.startswith("postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("bootstrap_admin_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 24:
            raise ValueError("must be at least 24 characters")
        return value

    @field_validator("master_key")
    @classmethod
    def _master(cls, value: str | None) -> str | None:
        import base64
        import binascii

        if value is None:
            return None
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64 of 32 random bytes") from None
        if len(raw) != 32:
            raise ValueError(f"must decode to 32 bytes, not {len(raw)}")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:///")

    @property
    def sqlite_path(self) -> Path:
        return Path(self.database_url.removeprefix("sqlite:///"))


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read CRM_* variables (and flag overrides); refuse unknown names and bad values."""
    env = dict(os.environ if environ is None else environ)
    known = {f"CRM_{name.upper()}" for name in Settings.model_fields}
    unknown = sorted(k for k in env if k.startswith("CRM_") and k not in known
                     and not k.startswith("CRM_TEST_"))
    if unknown:
        raise SettingsError(f"unknown setting {unknown[0]}; known: {', '.join(sorted(known))}")
    values: dict[str, object] = {name.removeprefix("CRM_").lower(): value
                                 for name, value in env.items() if name in known}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        name = "CRM_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise SettingsError(f"{name}: {first['msg']}") from None
