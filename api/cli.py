"""The `crm` command: serve, keys, and (as the issues land) replay, demo, audit, bench."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from domain.values import Role

T = TypeVar("T")
cli = typer.Typer(help="CRM event backbone", no_args_is_help=True, add_completion=False)
keys_cli = typer.Typer(help="API keys", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
audit_cli = typer.Typer(help="Audit: verify the hash chains, export history", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")
console = Console(stderr=True)


def _settings(*, kafka: bool | None = False, listen: bool = False, **overrides: Any) -> Any:
    """Every setting checked before anything starts: its form, then whether the database (and
    Kafka: `kafka=True` needs it, None checks it when set; and the API's address with `listen`)
    answers. A bad one: one line naming the variable, the problem and a good value; exit 2."""
    from infra.preflight import check_database, check_kafka, check_listen
    from infra.settings import SettingsError, load_settings

    try:
        settings = load_settings(**overrides)
        check_database(settings)
        if kafka or (kafka is None and settings.kafka_bootstrap):
            check_kafka(settings)
        if listen:
            check_listen(settings.host, settings.port)
    except SettingsError as error:
        _fail("configuration error", str(error), 2)
    return settings


def _guarded(make: Callable[[], T]) -> T:
    """Start-up failures (bad master key, unreachable database) end with one line, exit 2."""
    from infra.crypto import MasterKeyError
    from projections.replay import one_line

    try:
        return make()
    except MasterKeyError as error:
        message = str(error)  # "CRM_MASTER_KEY is ..." reads "CRM_MASTER_KEY: is ..." like the rest
        if message.startswith("CRM_MASTER_KEY "):
            message = "CRM_MASTER_KEY: " + message.removeprefix("CRM_MASTER_KEY ")
        _fail("configuration error", message, 2)
    except Exception as error:
        if type(error).__module__.startswith(("eventsourcing", "psycopg", "sqlalchemy",
                                              "sqlite3")):
            _fail("configuration error",
                  f"CRM_DATABASE_URL: cannot open the store ({one_line(error)})", 2)
        raise


def _fail(label: str, message: str, code: int) -> NoReturn:
    """One line on stderr (never wrapped; brackets in the message printed as they are), exit."""
    console.print(f"[red]{label}:[/red] {escape(' '.join(message.split()))}", soft_wrap=True,
                  highlight=False)
    raise typer.Exit(code)


class _EventRate(ProgressColumn):
    """Events per second (rich's own speed column counts bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None and task.completed and task.elapsed:  # too few samples yet
            speed = task.completed / task.elapsed
        return Text("- ev/s" if speed is None else f"{speed:,.0f} ev/s",
                    style="progress.data.speed")


@contextmanager
def _events_bar(description: str, total: float, *, quiet: bool = False
                ) -> Iterator[tuple[Progress, TaskID]]:
    """A bar counting events, with events/s and time left; shown only on a terminal (not with
    --json), so a pipe or a log gets the summary line alone."""
    columns = (TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed:,.0f}/{task.total:,.0f} events"), _EventRate(),
               TimeRemainingColumn(), TextColumn("left"))
    with Progress(*columns, console=console, disable=quiet or not console.is_terminal) as bar:
        yield bar, bar.add_task(description, total=total)


def _rate(events: int, seconds: float) -> str:
    return f"{events:,} events in {seconds:.1f} s ({events / max(seconds, 1e-6):,.0f} ev/s)"


def _print_json(value: dict[str, Any]) -> None:
    print(json.dumps(value, default=str))


def _container() -> Any:
    from infra.bootstrap import build

    settings = _settings()
    return _guarded(lambda: build(settings, start_follower=False))


@cli.command()
def serve(host: str = typer.Option(None, help="default CRM_HOST or 127.0.0.1"),
          port: int = typer.Option(None, help="default CRM_PORT or 8000")) -> None:
    """Run the API (embedded mode: SQLite file + in-process projections)."""
    import uvicorn

    from api.app import create_app

    settings = _settings(host=host, port=port, kafka=None, listen=True)
    app = _guarded(lambda: create_app(settings))
    console.print(f"[green]serving[/green] on http://{settings.host}:{settings.port} "
                  f"(docs at /docs; store {settings.database_url})")
    uvicorn.run(app, host=settings.host, port=settings.port,
                log_level=settings.log_level)


@keys_cli.command("create")
def keys_create(role: Role = typer.Option(..., help="operator|manager|auditor|analyst|admin"),
                user: str = typer.Option(..., help="the user id the key acts as")) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from infra.clock import system_clock

    container = _container()
    try:
        token = container.keys.create(user, role, system_clock())
    finally:
        container.close()
    console.print(f"created a {role} key for {user}; it is shown only now:")
    print(token)


@keys_cli.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (the part after crm_)."""
    from infra.clock import system_clock

    container = _container()
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
                                                help="a projection name (repeatable); default all"),
           as_json: bool = typer.Option(False, "--json",
                                        help="print one JSON object instead of a table")
           ) -> None:
    """Rebuild projections from the store into fresh tables and compare with the live ones."""
    import time

    from rich.table import Table

    from infra.rebuild import replay_and_compare, select
    from projections.replay import EventFailed, one_line

    container = _container()
    try:
        try:
            chosen = select(projection, container.keyring)
        except ValueError as error:
            _fail("error", str(error), 2)
        live_error: str | None = None
        try:
            # Distributed mode: the Kafka consumers feed the live copy (per partition), not
            # this process; it is compared at their common position (docs/bus.md).
            if not container.settings.kafka_bootstrap:
                container.follower.run_once()
        except Exception as error:  # the live copy is stuck: replaying to the head names why
            live_error = one_line(error)
        names = [p.name for p in chosen]
        total = container.store_position()
        began = time.perf_counter()
        with _events_bar("replay", total, quiet=as_json) as (bar, task):
            # one bar for all: each projection replays the store once, so a projection's event
            # counts 1/len(names) of a store event (the rate is then store events per second)
            def step(name: str, n: int) -> None:
                bar.update(task, advance=n / len(names),
                           description=f"replay {name} ({names.index(name) + 1}/{len(names)})")

            try:
                outcomes = replay_and_compare(container, names, progress=step,
                                              to_head=live_error is not None)
            except EventFailed as failed:
                if as_json:
                    _print_json({"ok": False, "failed": failed.as_dict(),
                                 "live_error": live_error})
                _fail("replay failed", str(failed), 1)
            bar.update(task, completed=total)
        seconds = time.perf_counter() - began
    finally:
        container.close()
    events = max((o.receipt.events for o in outcomes), default=0)
    differing = [o.receipt.projection for o in outcomes if not o.matches]
    parked = [f for o in outcomes for f in o.parked]
    ok = not differing and not parked and live_error is None
    if as_json:
        _print_json({"ok": ok, "events": events, "seconds": round(seconds, 3),
                     "events_per_second": round(events / max(seconds, 1e-6), 1),
                     "live_error": live_error,
                     "projections": [{**o.receipt.as_dict(), "live_position": o.live_position,
                                      "live_digest": o.live_digest, "match": o.matches,
                                      "difference": o.difference,
                                      "not_applied": [f.as_dict() for f in o.parked]}
                                     for o in outcomes]})
    else:
        table = Table("projection", "events", "range", "replay digest", "live", "match")
        for o in outcomes:
            r = o.receipt
            table.add_row(r.projection, str(r.events), f"{r.first_position}..{r.last_position}",
                          r.state_digest[:16], o.live_digest[:16],
                          "[green]yes[/green]" if o.matches else "[red]NO[/red]")
        Console().print(table)
        for o in outcomes:
            if not o.matches:
                console.print(f"[red]{o.receipt.projection}[/red]: {escape(str(o.difference))}",
                              soft_wrap=True)
        verdict = (f"{len(outcomes)} projections match" if not differing else
                   f"{len(differing)} of {len(outcomes)} projections differ: "
                   f"{', '.join(differing)}")
        if parked:
            verdict += (f"; {len(parked)} event{'s' if len(parked) > 1 else ''} could not "
                        "be applied")
        print(f"replayed {_rate(events, seconds)}; {verdict}")
        for missed in parked:  # one line each, naming the event
            console.print(f"[red]replay:[/red] {escape(str(missed))}", soft_wrap=True,
                          highlight=False)
    if live_error is not None:
        _fail("the live read models could not catch up", live_error, 1)
    if not ok:
        raise typer.Exit(1)


@cli.command()
def rebuild(projection: str = typer.Argument(..., help="the projection to rebuild"),
            undo: bool = typer.Option(False, "--rollback", help="put the previous copy back"),
            as_json: bool = typer.Option(False, "--json",
                                         help="print one JSON object instead of a summary")
            ) -> None:
    """Blue/green: rebuild a projection beside the live tables, check it, switch atomically."""
    import time

    from infra.bluegreen import SwitchRefused, blue_green, rollback
    from projections.replay import EventFailed

    container = _container()
    try:
        if undo:
            position = rollback(container, projection)
            if as_json:
                _print_json({"ok": True, "projection": projection, "rolled_back_to": position})
            else:
                print(f"rolled {projection} back to its copy at position {position}")
            return
        total = container.store_position()
        built = [0]
        parked: dict[int, EventFailed] = {}  # by position: a retried page parks again
        began = time.perf_counter()
        with _events_bar(f"{projection}: building", total, quiet=as_json) as (bar, task):
            doing = {"rebuild": "building", "check": "checking",
                     "catch up": "switching"}

            def step(phase: str, n: int) -> None:
                # two passes over the store (build, check): each event counts half on the bar
                built[0] += n if phase == "rebuild" else 0
                bar.update(task, advance=n / 2 if phase != "catch up" else 0,
                           description=f"{projection}: {doing.get(phase, phase)}")

            def note(failed: EventFailed) -> None:
                parked.setdefault(failed.position, failed)

            switched = blue_green(container, projection, progress=step, on_park=note)
            bar.update(task, completed=total)
        seconds = time.perf_counter() - began
    except EventFailed as failed:
        if as_json:
            _print_json({"ok": False, "projection": projection, "failed": failed.as_dict()})
        _fail("rebuild failed, the live tables are untouched", str(failed), 1)
    except (SwitchRefused, ValueError) as error:
        if as_json:
            _print_json({"ok": False, "projection": projection, "error": str(error)})
        _fail("rebuild refused", str(error), 1)
    finally:
        container.close()
    if as_json:
        _print_json({"ok": True, "projection": projection, "events": built[0],
                     "seconds": round(seconds, 3),
                     "events_per_second": round(built[0] / max(seconds, 1e-6), 1),
                     "position": switched.position, "digest": switched.digest,
                     "previous_position": switched.previous_position,
                     "not_applied": [f.as_dict() for f in parked.values()]})
        return
    print(f"rebuilt {projection} from {_rate(built[0], seconds)}, checked by an independent "
          f"replay; switched at position {switched.position} (digest {switched.digest[:16]}); "
          f"previous copy (position {switched.previous_position}) kept for "
          f"`crm rebuild {projection} --rollback`")
    for missed in parked.values():  # parked in the new copy, as the live runner parks them
        console.print(f"[yellow]rebuild:[/yellow] {escape(str(missed))} (left out, as live)",
                      soft_wrap=True, highlight=False)


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
    from sqlalchemy import func, select

    from infra.crypto import MasterKeyError, client_keys, parse_master_key

    try:
        new = parse_master_key(new_key)
    except MasterKeyError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    container = _container()
    try:
        with container.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(client_keys)).scalar_one()
        with Progress(TextColumn("re-wrapping"), BarColumn(), MofNCompleteColumn(),
                      console=console) as bar:
            task = bar.add_task("rewrap", total=total)
            count = container.keyring.rewrap(new, progress=lambda n: bar.advance(task, n))
    finally:
        container.close()
    console.print(f"re-wrapped {count} data keys; now set CRM_MASTER_KEY to the new key")


@audit_cli.command("export")
def audit_export(output: Path = typer.Option(..., "--output", "-o", help="the .jsonl file"),
                 client: str = typer.Option(None, "--client", help="only this client's events"),
                 since: datetime = typer.Option(None, "--from", help="recorded at or after"),
                 until: datetime = typer.Option(None, "--to", help="recorded at or before"),
                 with_keys: bool = typer.Option(False, "--with-keys",
                                                help="append the wrapped data keys")) -> None:
    """Export history as CloudEvents JSON lines with their hashes, verifiable offline."""
    from uuid import UUID

    from infra.export import export_lines

    container = _container()
    try:
        total = container.store_position()
        with output.open("wb") as out, _bar("exporting", total) as advance:
            for n, line in enumerate(export_lines(
                    container, client_id=UUID(client) if client else None,
                    recorded_from=_aware(since), recorded_to=_aware(until),
                    with_keys=with_keys)):
                out.write(line + b"\n")
                if n:
                    advance(1)
    finally:
        container.close()
    console.print(f"exported to {output}")


@audit_cli.command("import")
def audit_import(source: Path = typer.Argument(..., help="a full export (.jsonl)")) -> None:
    """Load a full export into an empty store, as it was (positions, bytes, hashes)."""
    from infra.export import import_lines

    container = _container()
    try:
        with source.open("rb") as lines:
            count = import_lines(container, lines)
        container.follower.run_once()
    finally:
        container.close()
    console.print(f"imported {count} events")


@audit_cli.command("verify")
def audit_verify(file: Path = typer.Option(None, "--file", help="verify an export offline"),
                 anchor: str = typer.Option(None, "--anchor", help="with --file: a signed head "
                                            "kept earlier (its JSON or a file holding it)"),
                 as_json: bool = typer.Option(False, "--json",
                                              help="print one JSON object instead of a summary")
                 ) -> None:
    """Check every stored event's hashes; name the first altered, removed, inserted or moved one."""
    import time

    if file is not None:
        from infra.audit import load_head
        from infra.export import verify_lines

        try:
            kept = load_head(anchor) if anchor else None
        except (OSError, ValueError) as error:
            _fail("bad anchor", str(error), 2)
        began = time.perf_counter()
        with file.open("rb") as lines:
            verdict = verify_lines(lines, anchor=kept)
        _report(verdict, time.perf_counter() - began, as_json)
        return

    from infra.chain import verify_store

    container = _container()
    try:
        total = container.store_position()
        began = time.perf_counter()
        with _events_bar("verifying", total, quiet=as_json) as (bar, task):
            verdict = verify_store(container.app, progress=lambda n: bar.advance(task, n))
        seconds = time.perf_counter() - began
    finally:
        container.close()
    _report(verdict, seconds, as_json)


def _report(verdict: Any, seconds: float, as_json: bool) -> None:
    field = getattr(verdict, "field", None)  # export verdicts name the edited field
    if as_json:
        _print_json({"ok": verdict.ok, "events": verdict.events, "seconds": round(seconds, 3),
                     "events_per_second": round(verdict.events / max(seconds, 1e-6), 1),
                     "chain_head": verdict.last_chain_hash, "problem": verdict.problem,
                     "field": field, "position": verdict.position, "detail": verdict.detail,
                     "signed": getattr(verdict, "signed", None)})
    elif verdict.ok:
        print(f"verified {_rate(verdict.events, seconds)}; chain head {verdict.last_chain_hash}"
              + ("" if not hasattr(verdict, "signed") else
                 "; signed head verified" if verdict.signed else "; no signed head"))
    if not verdict.ok:
        where = f" ({field})" if field else ""
        _fail("FAILED", f"{verdict.problem}{where} at position {verdict.position}: "
                        f"{verdict.detail}", 1)


@audit_cli.command("anchor")
def audit_anchor() -> None:
    """Print the current chain head signed (position, hash, time): keep it, and later prove
    with `crm audit verify --file F --anchor A` that the history up to it is unchanged."""
    from infra.export import current_head

    container = _container()
    try:
        if getattr(container, "signer", None) is None:
            _fail("no signing key", "set CRM_SIGNING_KEY (make one with: crm audit "
                                    "new-signing-key)", 2)
        head = current_head(container)
    finally:
        container.close()
    print(json.dumps(head, separators=(",", ":")))


@audit_cli.command("replay")
def audit_replay(file: Path = typer.Option(..., "--file", help="a full export (.jsonl)"),
                 as_json: bool = typer.Option(False, "--json",
                                              help="print one JSON object instead of lines"),
                 at: str = typer.Option(None, "--at", help="reaction figures: the business "
                                        "moment the clocks are read at (RFC 3339 with offset; "
                                        "default: the export's signed head time)"),
                 as_of: str = typer.Option(None, "--as-of", help="reaction figures: knowledge "
                                           "cut-off (default: as --at)"),
                 since: str = typer.Option(None, "--from", help="reaction figures: situations "
                                           "opened at or after (business time)"),
                 until: str = typer.Option(None, "--to", help="reaction figures: situations "
                                           "opened before (business time)"),
                 calendar: str = typer.Option("as_measured", "--calendar",
                                              help="as_measured or current")) -> None:
    """Verify a full export, load it into a scratch store and rebuild every projection from it
    alone: the receipts' digests equal the live service's for the same events, and the
    reaction-time figures equal GET /v1/reports/reaction-times?all_ids=true for the same range
    and moments. Personal-data projections need an export made --with-keys and the master key
    its data keys are wrapped with (CRM_MASTER_KEY, or this installation's)."""
    import base64
    import tempfile

    from domain.catalogue import jsonable
    from infra.bootstrap import build, master_key
    from infra.export import import_lines, verify_lines
    from infra.rebuild import replay_and_compare
    from infra.settings import Settings
    from projections.reaction_times import BASES, reaction_report

    if calendar not in BASES:
        _fail("bad --calendar", f"{calendar!r}: one of {', '.join(BASES)}", 2)
    opened_from, opened_before = _offset_instant("--from", since), _offset_instant("--to", until)
    given_at, given_as_of = _offset_instant("--at", at), _offset_instant("--as-of", as_of)
    with file.open("rb") as lines:
        verdict = verify_lines(lines)
    if not verdict.ok:
        _report(verdict, 0.0, as_json)
    moment = (given_at or _export_moment(file, verdict.head)).astimezone(UTC)
    known = (given_as_of or moment).astimezone(UTC)
    live = _settings()
    key = base64.b64encode(_guarded(lambda: master_key(live))).decode()
    with tempfile.TemporaryDirectory() as folder:
        scratch = _guarded(lambda: build(Settings(
            database_url=f"sqlite:///{folder}/scratch.db", master_key=key,
            timezone=live.timezone), start_follower=False))
        try:
            with file.open("rb") as lines:
                try:
                    count = import_lines(scratch, lines)
                except ValueError as error:
                    _fail("error", str(error), 2)
            scratch.follower.run_once()
            receipts = [o.receipt.as_dict() for o in replay_and_compare(scratch)]
            assert scratch.alerts is not None
            with scratch.engine.connect() as conn:
                # The live route's own query, on the policy the live service would use
                # (its CRM_TIMEZONE's default calendar), every id listed.
                figures = jsonable(reaction_report(
                    conn, scratch.alerts.policy, at=moment, as_of=known, basis=calendar,
                    opened_from=opened_from, opened_before=opened_before, ids_limit=None))
        finally:
            scratch.close()
    if as_json:
        _print_json({"events": count, "chain_head": verdict.last_chain_hash,
                     "receipts": receipts, "reaction_times": figures})
        return
    print(f"{count:,} events from {file}; chain head {verdict.last_chain_hash}")
    for r in receipts:
        print(f"{r['projection']:<24} {r['code_version']:<18} {r['first_position']}-"
              f"{r['last_position']} events {r['events_digest']} state {r['state_digest']}")
    print(f"reaction times at {figures['at']} as of {figures['as_of']} "
          f"(calendar {calendar}; --json for every figure and id):")
    for group in [*figures["groups"], {"specialist_id": "all", "kind": "all",
                                       **figures["totals"]}]:
        print(f"  specialist {group['specialist_id'] or '-'} kind {group['kind']}: "
              f"{group['count']} situations")
        for clock in ("first_reaction", "resolution"):
            print(f"    {clock}: {_clock_line(group[clock])}")


def _clock_line(stats: dict[str, Any]) -> str:
    def seconds(name: str) -> str:
        found = (stats.get("business_seconds") or {}).get(name)
        return "-" if not found else str(found.get("seconds", found))

    return (f"stopped {stats['stopped']} median {seconds('median')}s "
            f"p90 {seconds('p90')}s (business) "
            f"breached {stats['breached']} of {stats['decided']} decided "
            f"(rate {stats['breach_rate']})")


def _offset_instant(option: str, value: str | None) -> datetime | None:
    """An RFC 3339 instant with an offset, as the API takes them."""
    if value is None:
        return None
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        _fail(f"bad {option}", f"{value!r} is not an RFC 3339 date-time", 2)
    if found.tzinfo is None:
        _fail(f"bad {option}", f"{value!r} has no offset (e.g. +00:00)", 2)
    return found


def _export_moment(file: Path, head: dict[str, Any] | None) -> datetime:
    """When the export was made (its signed head's time), else its last recorded time."""
    if head is not None and head.get("time"):
        return datetime.fromisoformat(str(head["time"])).astimezone(UTC)
    latest = datetime(1970, 1, 1, tzinfo=UTC)
    with file.open("rb") as lines:
        for line in lines:
            recorded = json.loads(line).get("recordedtime") if line.strip() else None
            if recorded:
                latest = max(latest, datetime.fromisoformat(recorded).astimezone(UTC))
    return latest


@audit_cli.command("new-signing-key")
def audit_new_signing_key() -> None:
    """Print a new Ed25519 signing key (base64) for CRM_SIGNING_KEY."""
    from infra.audit import new_signing_key

    print(new_signing_key())


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else (value if value.tzinfo else value.replace(tzinfo=UTC))


@contextmanager
def _bar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


@cli.command()
def relay(progress_seconds: float = typer.Option(
        60.0, "--progress-seconds", min=0.1,
        help="log a progress line (position, rate, lag) this often")) -> None:
    """Publish the store's events to Kafka (crm.events.v1) until stopped (distributed mode).
    Logs to stderr: a progress line at start and every --progress-seconds, and any trouble."""
    from consumers.main import run_relay

    _service_logging()
    run_relay(_settings(kafka=True), progress_seconds=progress_seconds)


def _service_logging() -> None:
    """Our INFO lines (progress) and everyone's warnings on stderr, one line each, timestamped;
    kafka-python's own INFO chatter left out."""
    import logging

    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for ours in ("consumers", "infra"):
        logging.getLogger(ours).setLevel(logging.INFO)


@cli.command()
def consume(redrive: bool = typer.Option(False, help="re-apply parked events, then exit")) -> None:
    """Feed the read models from Kafka (group crm-projections) until stopped (distributed mode)."""
    from consumers.main import redrive as redrive_parked
    from consumers.main import run_consume

    if not redrive:
        _service_logging()  # the partitions given, and any trouble, on stderr
        run_consume(_settings(kafka=True))
        return
    report = redrive_parked(_settings())
    console.print(f"re-driven: {len(report.redriven)}, still failing: {len(report.still_failing)}")
    for ref, error in report.still_failing.items():
        console.print(f"[red]{ref}[/red]: {error}")
    if report.still_failing:
        raise typer.Exit(1)


@cli.command()
def deadletters(redrive: bool = typer.Option(False, help="re-apply them (after a fix)"),
                as_json: bool = typer.Option(False, "--json", help="JSON lines")) -> None:
    """List the events a projection could not apply (parked), or re-drive them."""
    from consumers import dlq

    container = _container()
    try:
        if redrive:
            report = dlq.redrive(container.engine, container.runner.projections,
                                 container.clock, runner=container.runner)
            if as_json:
                _print_json({"redriven": report.redriven, "still_failing": report.still_failing})
            else:
                console.print(f"re-driven: {len(report.redriven)}, "
                              f"still failing: {len(report.still_failing)}")
            if report.still_failing:
                raise typer.Exit(1)
            return
        rows = dlq.parked(container.engine)
        for row in rows:
            if as_json:
                _print_json({k: v for k, v in row.items() if k != "record"})
            else:
                console.print(f"{row['projection']}: position {row['position']} "
                              f"{row['type']} ({row['event_ref']}): {row['error']}",
                              highlight=False, soft_wrap=True)
        if not as_json:
            console.print(f"{len(rows)} parked")
    finally:
        container.close()


@cli.command()
def demo(clients: int = typer.Option(2000, min=1, help="number of clients"),
         months: int = typer.Option(18, min=1, max=240, help="months of history"),
         seed: int = typer.Option(7, help="the same seed gives the same history"),
         until: str | None = typer.Option(
             None, help="last day of the history (YYYY-MM-DD; default today: it ends now, "
                        "so the current month has data); the same --until gives the same "
                        "history"),
         start: str | None = typer.Option(
             None, help="first day instead (YYYY-MM-DD): the history runs --months from it"),
         batch: int = typer.Option(500, min=1, help="most steps per write (1: one write each)"),
         force: bool = typer.Option(False, "--force", help="load into a store holding events")
         ) -> None:
    """Load a realistic, deterministic demo history through the command layer."""
    import time
    from datetime import date

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from demo import DemoLoadError, Loader, LoadStats, generate, until_today
    from domain.months import add_months
    from infra.clock import system_clock

    now = system_clock()
    stop: datetime | None = None
    if start is not None and until is not None:
        raise typer.BadParameter("give --start or --until, not both", param_hint="--until")
    if start is not None:
        try:
            first = date.fromisoformat(start)
        except ValueError:
            raise typer.BadParameter("a date such as 2025-05-01", param_hint="--start") from None
        end = add_months(first, months)
        if end > now.date():  # business time may not lie in the future
            console.print(f"[red]the history would end on {end}, after today[/red]; "
                          "give an earlier --start or fewer --months")
            raise typer.Exit(2)
    else:
        try:
            last = None if until is None else date.fromisoformat(until)
            first, stop = until_today(now, months, last)
        except ValueError as error:
            raise typer.BadParameter(f"a date such as 2026-11-30, not after today ({error})",
                                     param_hint="--until") from None
        end = stop.date()
    container = _container()
    try:
        if container.store_position() > 0 and not force:
            console.print("[red]the store already holds events[/red]; use --force to add the demo "
                          "anyway (with another --seed: ids derive from the seed)")
            raise typer.Exit(1)
        columns = (TextColumn("demo"), BarColumn(), TextColumn("{task.fields[day]}"),
                   TextColumn("{task.fields[events]:>8,} events"),
                   TextColumn("{task.fields[rate]:>7,.0f} ev/s"), TimeElapsedColumn())
        began = time.perf_counter()
        failed: DemoLoadError | None = None
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("demo", total=(end - first).days, day=str(first), events=0,
                                rate=0.0)

            def advance(reached: datetime, stats: LoadStats) -> None:
                day = reached.date()
                bar.update(task, completed=(day - first).days, day=day.isoformat(),
                           events=stats.events,
                           rate=stats.events / max(time.perf_counter() - began, 1e-6))

            try:
                stats = Loader(container.app, batch=batch, on_write=advance).load(
                    generate(seed=seed, clients=clients, months=months, start=first,
                             until=stop))
                bar.update(task, completed=(end - first).days)
            except DemoLoadError as error:
                failed = error
        if failed is not None:
            console.print(f"[red]demo load failed; that write was not saved:[/red] {failed}")
            raise typer.Exit(1)
        seconds = time.perf_counter() - began
        console.print(f"loaded {clients} clients over {months} months: {stats.events} events in "
                      f"{stats.writes} writes, {seconds:.1f} s "
                      f"({stats.events / seconds:,.0f} ev/s)")
        began = time.perf_counter()
        with console.status("catching up the read models"):
            applied = container.follower.run_once()
        console.print(f"read models caught up: {applied} events applied in "
                      f"{time.perf_counter() - began:.1f} s")
    finally:
        container.close()


@cli.command()
def bench(size: str = typer.Option("small", help="small (default) | medium | large"),
          events: int = typer.Option(None, help="history size in events (overrides --size)"),
          only: list[str] = typer.Option(None, "--only",
                                         help="ingest|rebuild|audit|api|bus|scaling (repeatable)"),
          backend: list[str] = typer.Option(None, "--backend",
                                            help="sqlite|postgres (repeatable); default both"),
          scaling: bool = typer.Option(False, help="also ingest/rebuild/verify at 10k..1M"),
          as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table")
          ) -> None:
    """Benchmarks, each against a baseline run in the same invocation (docs/benchmarks.md)."""
    from bench.main import main as bench_main

    status = bench_main(size=size, events=events, only=only, backends=backend, scaling=scaling,
                        as_json_output=as_json)
    if status:
        raise typer.Exit(status)


@cli.command()
def ingest() -> None:
    """Execute commands other systems send on crm.ingest.v1 until stopped (docs/ingest.md)."""
    from consumers.integrations_main import run_ingest

    run_ingest(_settings(kafka=True))


webhooks_cli = typer.Typer(help="Webhook subscribers (docs/webhooks.md); alone: deliver",
                           invoke_without_command=True)
cli.add_typer(webhooks_cli, name="webhooks")


@webhooks_cli.callback()
def webhooks(ctx: typer.Context,
             replay: str = typer.Option(None, help="a subscriber to send again from --from"),
             from_position: int = typer.Option(1, "--from", min=1, help="store position")
             ) -> None:
    """Deliver events to the webhook subscribers until stopped (or re-send one from a position);
    subcommands manage the subscribers."""
    if ctx.invoked_subcommand is not None:
        return
    from consumers.integrations_main import replay_webhooks, run_webhooks

    if replay is None:
        run_webhooks(_settings())
        return
    try:
        replay_webhooks(_settings(), replay, from_position)
    except KeyError as error:
        console.print(f"[red]{error.args[0]}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{replay} will get every wanted event from position {from_position} again")


@contextmanager
def _webhook_store() -> Iterator[tuple[Any, Any]]:
    """(read-model engine, sealed secret store); subscriber errors end with one line, exit 1."""
    from consumers import webhooks as hooks

    container = _container()
    try:
        hooks.create(container.engine, container.keyring.secrets("webhook"))
        yield container, container.keyring.secrets("webhook")
    except hooks.SubscriberError as error:
        _fail(f"webhooks: {error.field}", str(error), 1)
    except (hooks.UnknownSubscriberError, KeyError) as error:
        _fail("webhooks", str(error.args[0]), 1)
    finally:
        container.close()


def _show_webhook(row: dict[str, Any]) -> None:
    last = row["last_delivery"]
    print(f"{row['name']}\t{row['url']}\ttypes={','.join(row['event_types']) or '*'}\t"
          f"position={row['position']}\t"
          f"last={'-' if last is None else last['position'] or 'alert'}\t"
          f"failures={row['failures']}\t"
          f"parked={row['parked']}")


@webhooks_cli.command("add")
def webhooks_add(name: str = typer.Argument(..., help="the subscriber's name"),
                 url: str = typer.Option(..., help="http(s) URL the events are POSTed to"),
                 event_type: list[str] = typer.Option(None, "--type", help="an event type "
                                                      "(repeatable); none: every event"),
                 start: int = typer.Option(None, min=0, help="deliver events after this store "
                                           "position; default: from now on; 0: all history"),
                 secret: str = typer.Option(None, envvar="CRM_WEBHOOK_SECRET", help=(
                     "the signing secret (32+ characters); default: generated"))) -> None:
    """Add a subscriber; prints its signing secret once (only a wrapped copy is stored)."""
    from consumers import webhooks as hooks

    with _webhook_store() as (container, secrets):
        position = container.store_position() if start is None else start
        _sub, shown = hooks.register(container.engine, name, url, secrets=secrets,
                                     event_types=event_type or (), position=position,
                                     secret=secret, clock=container.clock)
        console.print(f"added {name} from position {position}; its signing secret (shown "
                      "once):", highlight=False)
        print(shown)


@webhooks_cli.command("list")
def webhooks_list(as_json: bool = typer.Option(False, "--json", help="JSON lines")) -> None:
    """Each subscriber: URL, types, position, last delivery, failures, parked deliveries."""
    from consumers import webhooks as hooks

    with _webhook_store() as (container, _secrets):
        for row in hooks.status(container.engine):
            _print_json(row) if as_json else _show_webhook(row)


@webhooks_cli.command("update")
def webhooks_update(name: str = typer.Argument(..., help="the subscriber's name"),
                    url: str = typer.Option(None, help="a new URL"),
                    event_type: list[str] = typer.Option(None, "--type", help=(
                        "the new event types (repeatable)")),
                    all_types: bool = typer.Option(False, "--all-types",
                                                   help="every event type"),
                    position: int = typer.Option(None, min=0, help=(
                        "move it: the next delivery is the first event after this position")),
                    new_secret: bool = typer.Option(False, "--new-secret",
                                                    help="generate a new secret (printed once)"),
                    secret: str = typer.Option(None, envvar="CRM_WEBHOOK_SECRET",
                                               help="set this secret (32+ characters)")
                    ) -> None:
    """Change a subscriber's URL, event types, position or secret."""
    from consumers import webhooks as hooks

    if new_secret and secret:
        _fail("webhooks: secret", "give --secret or --new-secret, not both", 2)
    with _webhook_store() as (container, secrets):
        shown = hooks.new_secret() if new_secret else secret
        types = [] if all_types else (event_type or None)
        hooks.update_subscriber(container.engine, name, secrets=secrets, url=url,
                                event_types=types, secret=shown, position=position)
        _show_webhook(hooks.status(container.engine, name)[0])
        if new_secret:
            console.print("its new signing secret (shown once):", highlight=False)
            print(shown)


@webhooks_cli.command("remove")
def webhooks_remove(name: str = typer.Argument(..., help="the subscriber's name")) -> None:
    """Remove a subscriber, its secret, status and parked deliveries."""
    from consumers import webhooks as hooks

    with _webhook_store() as (container, secrets):
        hooks.remove_subscriber(container.engine, name, secrets=secrets)
        console.print(f"removed {name}")


@webhooks_cli.command("ping")
def webhooks_ping(name: str = typer.Argument(..., help="the subscriber's name")) -> None:
    """Send a signed test delivery now."""
    from consumers import webhooks as hooks

    with _webhook_store() as (container, secrets):
        outcome = hooks.ping(container.engine, name, secrets=secrets, clock=container.clock)
    if not outcome["delivered"]:
        _fail("ping failed", str(outcome["error"]), 1)
    console.print(f"delivered the test event {outcome['event_id']}")


@webhooks_cli.command("resend")
def webhooks_resend(name: str = typer.Argument(..., help="the subscriber's name")) -> None:
    """Send the subscriber's parked deliveries again now."""
    from consumers import webhooks as hooks

    with _webhook_store() as (container, secrets):
        found = hooks.resend_parked(container.engine, name, secrets=secrets,
                                    clock=container.clock)
    console.print(f"resent: {len(found['resent'])}, still failing: "
                  f"{len(found['still_failing'])}")
    if found["still_failing"]:
        raise typer.Exit(1)


def main() -> None:
    cli(args=sys.argv[1:])
