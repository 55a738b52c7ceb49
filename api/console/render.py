"""Templates and formatting: Jinja2 over the package's templates/, and the page's headers.

Formatting only changes how a value reads (a percent sign, hours and minutes, an instant in
UTC to the minute); every figure keeps the API's exact value beside it in a `<data value=...
data-path=...>` element, which is what the browser tests compare with the API's answer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from consumers.alert_hub import ALERT_KINDS

# Scripts, styles and data only from the console itself: no inline script or style, no eval.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
STATIC = "/console/static"


def raw(value: Any) -> str:
    """A JSON value as the tests read it back: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def when(value: Any, seconds: bool = False) -> str:
    """An RFC 3339 instant in UTC, to the minute (or second)."""
    if not isinstance(value, str):
        return "—" if value is None else str(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        return value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds
                                           else "%Y-%m-%d %H:%M UTC")


def duration(value: Any) -> str:
    """Seconds as days, hours and minutes ("1 d 2 h 5 min"; under a minute, seconds)."""
    if value is None:
        return "—"
    total = int(value)
    if abs(total) < 60:
        return f"{total} s"
    sign = "-" if total < 0 else ""
    minutes = abs(total) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = ([f"{days} d"] if days else []) + ([f"{hours} h"] if hours else []) + (
        [f"{mins} min"] if mins or not (days or hours) else [])
    return sign + " ".join(parts)


def pct(value: Any) -> str:
    return "—" if value is None else f"{value} %"


def ratio(value: Any) -> str:
    """A rate in 0..1 (the reaction report's breach_rate) as it is, with its meaning."""
    return "—" if value is None else f"{value}"


def short(value: Any) -> str:
    text = "" if value is None else str(value)
    return text[:8] if len(text) == 36 else text


def label(key: Any) -> str:
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def shown(value: Any) -> str:
    """A scalar as text: null as a dash, booleans as yes/no, instants in UTC."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and len(value) >= 20 and value[4:5] == "-" and value[10:11] == "T":
        return when(value, seconds=True)
    return str(value)


def uniform(items: Any) -> list[str] | None:
    """The columns of a list of flat objects with the same keys (a table), else None."""
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        return None
    keys = list(items[0])
    if any(list(i) != keys for i in items):
        return None
    if any(not scalar(v) for i in items for v in i.values()):
        return None
    return keys


def _env() -> Environment:
    env = Environment(loader=PackageLoader("api.console", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(raw=raw, when=when, duration=duration, pct=pct, ratio=ratio,
                       short=short, label=label, shown=shown)
    env.tests.update(scalar=scalar)
    env.globals.update(uniform=uniform, STATIC=STATIC, alert_kinds=list(ALERT_KINDS))
    return env


ENV = _env()


def page(request: Request, template: str, context: dict[str, Any],
         status: int = 200) -> HTMLResponse:
    html = ENV.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status, headers=headers())


def headers() -> dict[str, str]:
    return {"Content-Security-Policy": CSP, "Cache-Control": "no-store"}
