"""The `crm` command: serve, keys, and (as the issues land) replay, demo, audit, bench."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from domain.values import Role

cli = typer.Typer(help="CRM event backbone", no_args_is_help=True, add_completion=False)
keys_cli = typer.Typer(help="API keys", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
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


def main() -> None:
    cli(args=sys.argv[1:])
