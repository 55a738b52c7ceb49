"""Start-up checks that reach out: the database and Kafka answer, the API's address is free.

Each failure is a SettingsError in one line naming the variable and the address (never a
password), like a malformed setting (infra.settings); `crm` prints it and exits with status 2.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from infra.settings import Settings, SettingsError, invalid

CONNECT_SECONDS = 5


def check_database(settings: Settings) -> None:
    if settings.is_sqlite:
        _check_sqlite(settings.sqlite_path)
    else:
        _check_postgres(settings.database_url)


def _check_sqlite(path: Path) -> None:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise invalid("database_url", f"cannot create the folder {folder} "
                                      f"({error.strerror or error})") from None
    if path.is_dir():
        raise invalid("database_url", f"{path} is a folder, not a database file")
    if path.exists():
        try:
            with path.open("rb") as file:
                head = file.read(16)
        except OSError as error:
            raise invalid("database_url", f"cannot read {path} ({error.strerror or error})"
                          ) from None
        if head and head != b"SQLite format 3\x00":
            raise invalid("database_url", f"{path} is not a SQLite database")
        if not os.access(path, os.R_OK | os.W_OK):
            raise invalid("database_url", f"cannot write {path}")
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise invalid("database_url", f"cannot create {path}: the folder is not writable")


def _check_postgres(database_url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    where = f"{url.host}:{url.port or 5432}/{url.database}"
    try:
        with psycopg.connect(url.set(drivername="postgresql").render_as_string(
                hide_password=False), connect_timeout=CONNECT_SECONDS):
            pass
    except psycopg.Error as error:
        raise invalid("database_url", f"cannot connect to PostgreSQL at {where} "
                                      f"({_pg_reason(str(error), url.database)})") from None


def _pg_reason(message: str, database: str | None) -> str:
    text = message.lower()
    if "connection refused" in text:
        return "connection refused: is the server running there?"
    if "could not translate host name" in text or "name or service not known" in text:
        return "unknown host"
    if "timeout expired" in text:
        return f"no answer within {CONNECT_SECONDS} s"
    if "does not exist" in text and f'database "{database}"' in message:
        return f"it has no database {database}"
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    first = lines[0] if lines else "connection failed"
    return first.rsplit("failed: ", 1)[-1][:200]


def check_kafka(settings: Settings) -> None:
    """At least one bootstrap server accepts a connection (a client needs only one)."""
    if not settings.kafka_bootstrap:
        raise invalid("kafka_bootstrap", "not set, and this command needs Kafka "
                                         "(distributed mode)")
    failures = []
    for server in (s.strip() for s in settings.kafka_bootstrap.split(",")):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)),
                                          timeout=CONNECT_SECONDS):
                return
        except OSError as error:
            failures.append(f"{server} ({_socket_reason(error)})")
    raise invalid("kafka_bootstrap", f"cannot reach Kafka at {', '.join(failures)}")


def _socket_reason(error: OSError) -> str:
    if isinstance(error, socket.gaierror):
        return "unknown host"
    if isinstance(error, TimeoutError):
        return f"no answer within {CONNECT_SECONDS} s"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return str(error.strerror or error)


def check_listen(host: str, port: int) -> None:
    """The API can listen on host:port (the address is this machine's and the port is free)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise invalid("host", f"{host!r} does not resolve to an address") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as error:
            raise _listen_error(host, port, error) from None


def _listen_error(host: str, port: int, error: OSError) -> SettingsError:
    if error.errno == errno.EADDRINUSE:
        return invalid("port", f"{host}:{port} is already in use")
    if error.errno == errno.EADDRNOTAVAIL:
        return invalid("host", f"{host!r} is not an address of this machine")
    if error.errno == errno.EACCES:
        return invalid("port", f"not allowed to listen on {port} (below 1024 needs privileges)")
    return invalid("host", f"cannot listen on {host}:{port} ({error.strerror or error})")
