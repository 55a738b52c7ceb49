"""Settings: the only reader of os.environ. Unknown or malformed CRM_* settings stop the process.

A bad setting is reported in one line naming the variable, what is wrong and a good value
(`SettingsError`); the `crm` command prints it and exits with status 2. What can only be
checked by reaching out (the database and Kafka answer, the port is free) is in infra.preflight.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class SettingsError(Exception):
    """The configuration is unusable; the message says which variable and why."""


# A good value of each setting, shown after what was wrong with a bad one.
EXAMPLES: dict[str, str] = {
    "database_url": "sqlite:///data/crm.db or postgresql://crm@127.0.0.1:5432/crm",
    "kafka_bootstrap": "127.0.0.1:9092 (several: host1:9092,host2:9092)",
    "kafka_partitions": "6",
    "bootstrap_admin_key": "crm_admin0_change-me-please-0123456789",
    "master_key": "$(crm keys new-master)",
    "signing_key": "$(crm audit new-signing-key)",
    "timezone": "Europe/Berlin",
    "host": "127.0.0.1 (or 0.0.0.0 for every interface)",
    "port": "8000",
    "log_level": "info (debug, info, warning or error)",
    "read_wait_seconds": "5",
    "max_body_bytes": "1048576",
    "rate_limit_per_minute": "1200 (0 turns it off)",
    "cors_origins": "https://app.example.com,https://admin.example.com",
    "accept_new_key_store": "false (true only once the data keys are known lost for good)",
}
# Never echoed back in a message.
SECRETS = frozenset({"bootstrap_admin_key", "master_key", "signing_key"})


def invalid(name: str, problem: str) -> SettingsError:
    """The one-line error for setting `name` (a field name): variable, problem, good value."""
    return SettingsError(f"CRM_{name.upper()}: {problem}; for example "
                         f"CRM_{name.upper()}={EXAMPLES[name]}")


_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f:.]+)$")


def _is_host(value: str) -> bool:
    return bool(_HOST.match(value)) and len(value) <= 253


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str = Field(
        default="sqlite:///data/crm.db",
        description="sqlite:///path/file.db (default) or postgresql://user@host:port/db")
    kafka_bootstrap: str | None = Field(default=None, description="unset = embedded mode")
    kafka_partitions: int = Field(default=6, ge=1, le=1000, description=(
        "partitions of crm.events.v1, used when the relay creates it (an existing topic keeps "
        "its count; docs/bus.md, \"Partitions\")"))
    bootstrap_admin_key: str | None = None
    master_key: str | None = Field(default=None, description=(
        "base64 of 32 bytes wrapping the per-client data keys; on SQLite, default a key file "
        "beside the database (created on first start)"))
    signing_key: str | None = Field(default=None, description=(
        "base64 of a 32-byte Ed25519 private key signing chain heads (crm audit anchor, "
        "exports); on SQLite, default a key file beside the database (created on first "
        "start); on PostgreSQL unset = heads are unsigned"))
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
    accept_new_key_store: bool = Field(default=False, description=(
        "start with a new, empty key store beside an event store that holds events (the "
        "personal data sealed with the lost data keys stays unreadable)"))

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value.startswith("sqlite:///"):
            if not value.removeprefix("sqlite:///").strip():
                raise ValueError("names no file after sqlite:///")
            return value
        if not (value.startswith("postgresql://") or value.startswith("postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
            port = url.port  # a port that is not a number raises here
        except (ArgumentError, ValueError):
            raise ValueError("is not a valid postgresql://user@host:port/database URL") from None
        if not url.host or not url.database:
            raise ValueError("must name a host and a database (postgresql://user@host:port/db)")
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"port {port} is not between 1 and 65535")
        return value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _kafka(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # empty = unset = embedded mode
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not _is_host(host) or not port.isdigit() \
                    or not 1 <= int(port) <= 65535:
                raise ValueError("each comma-separated server must be host:port")
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not _is_host(value):
            raise ValueError("not a host name or IP address")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in (o.strip() for o in value.split(",")):
            if origin and origin != "*" and not re.match(
                    r"^https?://[^/\s:]+(:\d{1,5})?$", origin):
                raise ValueError(f"{origin!r} is not an origin: scheme://host[:port], no path")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone") from None
        return value

    @field_validator("bootstrap_admin_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = value.split("_", 2)  # as infra.keys reads a key: crm_<id>_<secret>
        if len(parts) != 3 or parts[0] != "crm" or not parts[1] or not parts[2]:
            raise ValueError("must read crm_<id>_<secret>")
        if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", parts[1]):
            raise ValueError("its id (between the underscores) must be 1-64 letters, digits "
                             "or '-'")
        if len(value) < 24:
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

    @field_validator("signing_key")
    @classmethod
    def _signing(cls, value: str | None) -> str | None:
        import base64
        import binascii

        if value is None:
            return None
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64 of a 32-byte Ed25519 private key") from None
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
        close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise SettingsError(f"unknown setting {unknown[0]}; {hint}known: "
                            f"{', '.join(sorted(known))}")
    values: dict[str, object] = {name.removeprefix("CRM_").lower(): value
                                 for name, value in env.items() if name in known}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        if field not in EXAMPLES:
            raise SettingsError(f"settings: {first['msg']}") from None
        message = str(first["msg"]).removeprefix("Value error, ")
        given = values.get(field)
        shown = "" if field in SECRETS or given is None else f"{str(given)[:80]!r}: "
        raise invalid(field, shown + message) from None
