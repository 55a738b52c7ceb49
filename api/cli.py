"""The `crm` command: serve, keys, and (as the issues land) replay, demo, audit, bench."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from domain.values import Role

cli = typer.Typer(help="CRM event backbone", no_args_is_help=True, add_completion=False)
keys_cli = typer.Typer(help="API keys", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
audit_cli = typer.Typer(help="Audit: verify the hash chains, export history", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")
console = Console(stderr=True)


def _settings(**overrides: object) -> object:
    from infra.settings import SettingsError, load_settings

    try:
        return load_settings(**overrides)
    except SettingsError as error:
        console.print(f"[red]configuration error:[/red] {error}")
        raise typer.Exit(2) from None


@cli.command()
def serve(host: str = typer.Option(None, help="default CRM_HOST or 127.0.0.1"),
          port: int = typer.Option(None, help="default CRM_PORT or 8000")) -> None:
    """Run the API (embedded mode: SQLite file + in-process projections)."""
    import uvicorn

    from api.app import create_app

    settings = _settings(host=host, port=port)
    app = create_app(settings)  # type: ignore[arg-type]
    console.print(f"[green]serving[/green] on http://{settings.host}:{settings.port} "  # type: ignore[attr-defined]
                  f"(docs at /docs; store {settings.database_url})")  # type: ignore[attr-defined]
    uvicorn.run(app, host=settings.host, port=settings.port,  # type: ignore[attr-defined]
                log_level=settings.log_level)  # type: ignore[attr-defined]


@keys_cli.command("create")
def keys_create(role: Role = typer.Option(..., help="operator|manager|auditor|analyst|admin"),
                user: str = typer.Option(..., help="the user id the key acts as")) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from infra.bootstrap import build
    from infra.clock import system_clock

    container = build(_settings(), start_follower=False)  # type: ignore[arg-type]
    try:
        token = container.keys.create(user, role, system_clock())
    finally:
        container.close()
    console.print(f"created a {role} key for {user}; it is shown only now:")
    print(token)


@keys_cli.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (the part after crm_)."""
    from infra.bootstrap import build
    from infra.clock import system_clock

    container = build(_settings(), start_follower=False)  # type: ignore[arg-type]
    try:
        done = container.keys.revoke(key_id, system_clock())
    finally:
        container.close()
    if not done:
        console.print(f"[red]no active key {key_id}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


@cli.command()
def replay(projection: list[str] = typer.Option(None, "--projection", "-p",
                                                help="a projection name (repeatable); default all")
           ) -> None:
    """Rebuild projections from the store into fresh tables and compare with the live ones."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from infra.bootstrap import build
    from infra.rebuild import replay_and_compare, select

    container = build(_settings(), start_follower=False)  # type: ignore[arg-type]
    try:
        try:
            chosen = select(projection)
        except ValueError as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from None
        container.follower.run_once()
        total = container.store_position()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as bar:
            tasks = {p.name: bar.add_task(p.name, total=total) for p in chosen}
            outcomes = replay_and_compare(
                container, [p.name for p in chosen],
                progress=lambda name, n: bar.advance(tasks[name], n))
    finally:
        container.close()
    table = Table("projection", "events", "range", "replay digest", "live", "match")
    for o in outcomes:
        r = o.receipt
        table.add_row(r.projection, str(r.events), f"{r.first_position}..{r.last_position}",
                      r.state_digest[:16], o.live_digest[:16],
                      "[green]yes[/green]" if o.matches else "[red]NO[/red]")
    Console().print(table)
    for o in outcomes:
        if not o.matches:
            console.print(f"[red]{o.receipt.projection}[/red]: {o.difference}")
    if not all(o.matches for o in outcomes):
        raise typer.Exit(1)


@keys_cli.command("new-master")
def keys_new_master() -> None:
    """Print a new random master key (base64 of 32 bytes) for CRM_MASTER_KEY."""
    from infra.crypto import new_master_key

    print(new_master_key())


@keys_cli.command("rotate-master")
def keys_rotate_master(new_key: str = typer.Option(..., "--new-key", envvar="CRM_NEW_MASTER_KEY",
                                                   help="the new master key (base64)")) -> None:
    """Re-wrap every client data key with a new master key (then set CRM_MASTER_KEY to it)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from infra.bootstrap import build
    from infra.crypto import MasterKeyError, client_keys, parse_master_key

    try:
        new = parse_master_key(new_key)
    except MasterKeyError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    container = build(_settings(), start_follower=False)  # type: ignore[arg-type]
    try:
        with container.engine.connect() as conn:
            total = conn.execute(client_keys.count()).scalar_one()
        with Progress(TextColumn("re-wrapping"), BarColumn(), MofNCompleteColumn(),
                      console=console) as bar:
            task = bar.add_task("rewrap", total=total)
            count = container.keyring.rewrap(new, progress=lambda n: bar.advance(task, n))
    finally:
        container.close()
    console.print(f"re-wrapped {count} data keys; now set CRM_MASTER_KEY to the new key")


@audit_cli.command("verify")
def audit_verify() -> None:
    """Check every stored event's hashes; name the first altered, removed, inserted or moved one."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from infra.bootstrap import build
    from infra.chain import verify_store

    container = build(_settings(), start_follower=False)  # type: ignore[arg-type]
    try:
        total = container.store_position()
        with Progress(TextColumn("verifying"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("verify", total=total)
            verdict = verify_store(container.app, progress=lambda n: bar.advance(task, n))
    finally:
        container.close()
    if verdict.ok:
        console.print(f"[green]ok[/green]: {verdict.events} events verified; chain head "
                      f"{verdict.last_chain_hash}")
        return
    console.print(f"[red]FAILED[/red]: {verdict.problem} at position {verdict.position}: "
                  f"{verdict.detail}")
    raise typer.Exit(1)


def main() -> None:
    cli(args=sys.argv[1:])
