"""The console's pages: server-rendered HTML over the API's own reads (api.console.reads).

Every page needs a session (api.console.session); each read is refused to the roles the API
refuses it to, so an analyst sees reports but no client, register or audit page. Writes (the
survey form) post with the session's CSRF token and run the commands the write routes run.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.datastructures import ImmutableMultiDict

from api.console import reads, survey
from api.console.reads import ConsoleError
from api.console.render import headers, page
from api.console.session import (
    PRE_COOKIE,
    SESSION_COOKIE,
    Session,
    SessionStore,
    drop_cookie,
    same,
    set_cookie,
)
from api.deps import Principal, Services
from api.routers.read_params import zone
from domain.values import ClientKind, SituationKind, SurveyOutcome

router = APIRouter(include_in_schema=False)

# (path, title, the read that decides who may open it)
NAV = (("clients", "Clients", "clients"), ("register", "Survey register", "work_orders"),
       ("satisfaction", "Satisfaction", "satisfaction"), ("payments", "Payments", "payments"),
       ("reactions", "Reaction times", "reaction_times"), ("audit", "Audit", "verify"))
REGISTER_STATUSES = ("due", "overdue", "done", "not_due", "unreachable", "open", "all")
SURVEYABLE = ("not_due", "due", "overdue", "unreachable")
EVENTS_SHOWN = 2000  # a client's timeline: its first events up to this many
DEBTORS_PER_PAGE = 20
MONTHS_SHOWN = 6
SEGMENTS = ("active", "low_active", "at_risk", "lost", "never")
SITUATIONS_CHARTED = 500


class NeedSignIn(Exception):
    """No live session: the browser goes to the sign-in page (and comes back after)."""

    def __init__(self, back: str) -> None:
        super().__init__(back)
        self.back = back


@dataclass
class Ctx:
    request: Request
    svc: Services
    session: Session
    who: Principal

    @property
    def role(self) -> str:
        return str(self.who.role)

    def may(self, read: str) -> bool:
        return reads.allowed(self.role, read)

    def read(self, name: str, **params: Any) -> Any:
        return reads.call(name, self.request, self.svc, self.who, **params)

    def tz(self) -> str:
        return zone(self.request, None)

    def moments(self) -> dict[str, str | None]:
        """`at` and `as_of` as the page was asked for them (reports, register, evidence)."""
        tz = self.tz()
        return {"at": _instant(_query(self.request, "at"), tz),
                "as_of": _instant(_query(self.request, "as_of"), tz)}

    def base(self, current: str, title: str) -> dict[str, Any]:
        flash, self.session.flash = self.session.flash, []
        asked = {k: _query(self.request, k) for k in ("at", "as_of")}
        return {"nav": [(p, t, p == current) for p, t, r in NAV if self.may(r)],
                "title": title, "user": self.session.user_id, "role": self.role,
                "csrf": self.session.csrf, "flash": flash,
                "alerts": self.may("alerts"), "personal": self.may("clients"),
                "at": asked["at"] or "", "as_of": asked["as_of"] or "",
                "keep": urlencode({k: v for k, v in asked.items() if v})}


def sessions(request: Request) -> SessionStore:
    return request.app.state.console_sessions  # type: ignore[no-any-return]


def context(request: Request) -> Ctx:
    svc: Services = request.app.state.services
    store = sessions(request)
    session = store.get(request.cookies.get(SESSION_COOKIE))
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if session is None:
        raise NeedSignIn(back)
    who = svc.keys.verify(session.key)
    if who is None:  # revoked since: the session ends with the key
        store.close(session.id)
        raise NeedSignIn(back)
    if svc.rate_limiter is not None and svc.rate_limiter.allow(who.key_id) > 0:
        raise ConsoleError(429, "too many requests for this API key; slow down")
    return Ctx(request, svc, session, who)


C = Annotated[Ctx, Depends(context)]


def _query(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value.strip() or None if value is not None else None


def _instant(value: str | None, tz: str, end_of_day: bool = False) -> str | None:
    """A form's date or local date-time read in the business time zone (RFC 3339 passes)."""
    if not value:
        return None
    text = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = date.fromisoformat(text) + timedelta(days=1 if end_of_day else 0)
        return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).isoformat()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?", text):
        return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).isoformat()
    return text  # checked by the route's own type: an offset is required


def _asked(ctx: Ctx) -> dict[str, str | None]:
    return {k: _query(ctx.request, k) for k in ("at", "as_of")}


def _link(path: str, **params: Any) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return path + ("?" + urlencode(kept) if kept else "")


# ---------------------------------------------------------------------------------------------
# Sign-in and sign-out


@router.get("")
@router.get("/")
def home(ctx: C) -> Response:
    first = next((path for path, _t, read in NAV if ctx.may(read)), None)
    if first is None:
        raise ConsoleError(403, f"the role {ctx.role} has no page in this console")
    return RedirectResponse(f"/console/{first}", status_code=303)


def _safe_back(value: str | None) -> str:
    if value and value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console"


@router.get("/sign-in")
def sign_in_form(request: Request) -> Response:
    token = secrets.token_urlsafe(32)
    response = page(request, "sign_in.html", {
        "csrf": token, "back": _safe_back(_query(request, "next")), "error": None,
        "title": "Sign in", "nav": [], "flash": [], "alerts": False, "keep": "", "user": None})
    set_cookie(request, response, PRE_COOKIE, token, max_age=3600)
    return response


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await _form(request)
    back = _safe_back(str(form.get("next") or ""))
    expected = request.cookies.get(PRE_COOKIE)
    if not expected or not same(expected, form.get("csrf")) or not _same_site(request):
        return _sign_in_again(request, back, "The form expired; please sign in again.", 403)
    svc: Services = request.app.state.services
    key = str(form.get("key") or "").strip()
    who = svc.keys.verify(key) if key else None
    if who is None:
        return _sign_in_again(request, back, "That API key is unknown or revoked.", 401)
    session = sessions(request).open(key, who.user_id, str(who.role))
    response = RedirectResponse(back, status_code=303)
    set_cookie(request, response, SESSION_COOKIE, session.id)
    drop_cookie(request, response, PRE_COOKIE)
    return response


def _sign_in_again(request: Request, back: str, error: str, status: int) -> Response:
    token = secrets.token_urlsafe(32)
    response = page(request, "sign_in.html", {
        "csrf": token, "back": back, "error": error, "title": "Sign in", "nav": [],
        "flash": [], "alerts": False, "keep": "", "user": None}, status=status)
    set_cookie(request, response, PRE_COOKIE, token, max_age=3600)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    form = await _form(request)
    store = sessions(request)
    session = store.get(request.cookies.get(SESSION_COOKIE))
    if session is not None and (not same(session.csrf, form.get("csrf"))
                                or not _same_site(request)):
        raise ConsoleError(403, "the form's CSRF token does not match this session")
    if session is not None:
        store.close(session.id)
    response = RedirectResponse("/console/sign-in", status_code=303)
    drop_cookie(request, response, SESSION_COOKIE)
    return response


async def _form(request: Request) -> ImmutableMultiDict[str, str]:
    """A form the console sent (application/x-www-form-urlencoded; nothing is uploaded)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if not body:
        return ImmutableMultiDict()
    if kind != "application/x-www-form-urlencoded":
        raise ConsoleError(415, "the console's forms send application/x-www-form-urlencoded")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ConsoleError(400, "the form is not UTF-8") from None
    return ImmutableMultiDict(parse_qsl(text, keep_blank_values=True))


def _same_site(request: Request) -> bool:
    """A browser that says where a form came from must say it came from here."""
    return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


async def _checked_form(ctx: Ctx) -> ImmutableMultiDict[str, str]:
    form = await _form(ctx.request)
    if not same(ctx.session.csrf, form.get("csrf")) or not _same_site(ctx.request):
        raise ConsoleError(403, "the form's CSRF token does not match this session; reload "
                                "the page and try again")
    return form


# ---------------------------------------------------------------------------------------------
# Clients


@router.get("/clients")
def clients_page(ctx: C) -> Response:
    q, kind = _query(ctx.request, "q"), _query(ctx.request, "kind")
    cursor = _query(ctx.request, "cursor")
    found = ctx.read("clients", q=q, kind=kind, cursor=cursor, limit=50)
    return page(ctx.request, "clients.html", {
        **ctx.base("clients", "Clients"), "q": q or "", "kind": kind or "",
        "kinds": [k.value for k in ClientKind], "result": found, "names": _names(ctx),
        "next": _link("/console/clients", q=q, kind=kind, cursor=found["next_cursor"])
        if found["next_cursor"] else None})


def _client_events(ctx: Ctx, client_id: UUID) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(events) < EVENTS_SHOWN:
        answer = ctx.read("events", client_id=client_id, cursor=cursor, limit=500)
        events += answer["items"]
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    return events[:EVENTS_SHOWN]


def _card_or_none(ctx: Ctx, client_id: UUID, **params: Any) -> dict[str, Any]:
    """{"card": ..., "query": ...} or {"error": ...} (a client not known yet at that moment)."""
    query = {k: v for k, v in params.items() if v is not None}
    try:
        return {"card": ctx.read("card", client_id=client_id, **query), "query": query}
    except ConsoleError as error:
        if error.status != 404:
            raise
        return {"card": None, "error": error.message, "query": query}


def _moment(ctx: Ctx, client_id: UUID, events: list[dict[str, Any]],
            index: int | None) -> dict[str, Any]:
    if not events:
        return {"index": None, "event": None, "known": None, "business": None}
    chosen = len(events) - 1 if index is None else max(0, min(index, len(events) - 1))
    event = events[chosen]
    return {"index": chosen, "event": event,
            # What the card said when this event had just been recorded.
            "known": _card_or_none(ctx, client_id, at=event["recorded_at"],
                                   as_of=event["recorded_at"]),
            # The card at this event's business moment, with everything known today.
            "business": _card_or_none(ctx, client_id, at=event["occurred_at"])}


def _index(ctx: Ctx) -> int | None:
    value = _query(ctx.request, "i")
    return int(value) if value is not None and value.isdigit() else None


@router.get("/clients/{client_id}")
def client_page(ctx: C, client_id: UUID) -> Response:
    today = ctx.read("card", client_id=client_id)
    events = _client_events(ctx, client_id)
    moment = _moment(ctx, client_id, events, _index(ctx))
    return page(ctx.request, "client.html", {
        **ctx.base("clients", str(today["profile"].get("name") or client_id)),
        "client_id": str(client_id), "today": today, "events": events, "moment": moment,
        "truncated": len(events) >= EVENTS_SHOWN})


@router.get("/clients/{client_id}/moment")
def client_moment(ctx: C, client_id: UUID) -> Response:
    """The two past cards for the slider (htmx swaps them in place)."""
    events = _client_events(ctx, client_id)
    return page(ctx.request, "_moment.html", {
        "client_id": str(client_id), "moment": _moment(ctx, client_id, events, _index(ctx)),
        "events": events})


# ---------------------------------------------------------------------------------------------
# Survey register


def _register(ctx: Ctx, *, status: str, wo: str | None, cursor: str | None,
              template: str | None, errors: list[str] | None = None,
              entered: dict[str, Any] | None = None) -> dict[str, Any]:
    if status not in REGISTER_STATUSES:
        raise ConsoleError(422, f"survey_status: one of {', '.join(REGISTER_STATUSES)}")
    register = ctx.read("work_orders", survey_status=None if status == "all" else status,
                        cursor=cursor, limit=50, **ctx.moments())
    selected = next((i for i in register["items"] if i["work_order_id"] == wo), None)
    form = None
    if selected is not None and selected["status"] in SURVEYABLE \
            and ctx.role in reads.WRITE_ROLES:
        templates = survey.templates(ctx.read("survey_templates"))
        chosen = next((t for t in templates if str(t.id) == template),
                      templates[0] if templates else None)
        form = {"templates": templates, "template": chosen,
                "form_id": (entered or {}).get("form_id") or secrets.token_urlsafe(16),
                "entered": entered or {}, "errors": errors or [],
                "outcomes": [o.value for o in SurveyOutcome]}
    return {**ctx.base("register", "Survey register"), "status": status,
            "statuses": REGISTER_STATUSES, "register": register, "selected": selected,
            "wo": wo, "cursor": cursor or "", "form": form,
            "next": _link("/console/register", status=status, cursor=register["next_cursor"],
                          **_asked(ctx)) if register["next_cursor"] else None,
            "may_write": ctx.role in reads.WRITE_ROLES}


@router.get("/register")
def register_page(ctx: C) -> Response:
    return page(ctx.request, "register.html", _register(
        ctx, status=_query(ctx.request, "status") or "due", wo=_query(ctx.request, "wo"),
        cursor=_query(ctx.request, "cursor"), template=_query(ctx.request, "template")))


@router.post("/register/{work_order_id}")
async def save_survey(ctx: C, work_order_id: UUID) -> Response:
    form = await _checked_form(ctx)
    if ctx.role not in reads.WRITE_ROLES:
        raise ConsoleError(403, f"the role {ctx.role} may not do this; allowed: "
                                + ", ".join(sorted(reads.WRITE_ROLES)))
    status = str(form.get("status") or "due")
    cursor = str(form.get("cursor") or "") or None
    entered: dict[str, Any] = {"form_id": str(form.get("form_id") or ""),
               "interviewer": str(form.get("interviewer") or "").strip(),
               "outcome": str(form.get("outcome") or "completed"),
               "comment": str(form.get("comment") or "").strip(),
               "ok": [str(v) for v in form.getlist("ok")],
               "complaints": {k[len("complaint-"):]: str(v).strip()
                              for k, v in form.items() if k.startswith("complaint-")}}
    errors: list[str] = []
    template: survey.Template | None = None
    try:
        template = survey.template(ctx.read("survey_templates"),
                                   UUID(str(form.get("template"))),
                                   int(str(form.get("template_version"))))
    except (ValueError, TypeError, LookupError):
        errors.append("Choose a survey template.")
    if not entered["form_id"]:
        errors.append("The form lost its id; reload the page.")
    if not entered["interviewer"]:
        errors.append("Interviewer: who made the call.")
    if entered["outcome"] not in {o.value for o in SurveyOutcome}:
        errors.append("Outcome: completed, unreachable or refused.")
    unticked: dict[str, str] = {}
    if template is not None and entered["outcome"] == SurveyOutcome.COMPLETED:
        for question in template.questions:
            if question["id"] in entered["ok"]:
                continue
            text = entered["complaints"].get(question["id"], "")
            if not text:
                errors.append(f"“{question['text']}” is not ticked: write down the "
                              "client's complaint.")
            unticked[question["id"]] = text
    client_id = str(form.get("client_id") or "")
    if not errors and template is not None:
        try:
            receipt = survey.save(ctx.svc.app, survey.Answers(
                form_id=entered["form_id"], work_order_id=work_order_id,
                client_id=UUID(client_id), template=template,
                interviewer=entered["interviewer"], outcome=SurveyOutcome(entered["outcome"]),
                comment=entered["comment"] or None, unticked=unticked),
                ctx.who.user_id, ctx.role)
        except (*reads.REFUSALS, ValueError) as error:
            refused = (reads.refusal(error) if isinstance(error, reads.REFUSALS)
                       else ConsoleError(422, str(error)))
            errors.append(refused.message)
        else:
            ctx.svc.marks.note(ctx.who, receipt.position)
            ctx.svc.wait_for(receipt.position, ctx.svc.read_wait_seconds)
            complaints = len(unticked)
            ctx.session.flash.append(
                f"Saved the survey of work order {str(work_order_id)[:8]}: "
                f"{entered['outcome']}, {len(unticked)} unticked"
                + (f", {complaints} complaint(s) registered" if complaints else "")
                + f" (store position {receipt.position}).")
            return RedirectResponse(_link("/console/register", status=status,
                                          wo=str(work_order_id), cursor=cursor),
                                    status_code=303)
    context = _register(ctx, status=status, wo=str(work_order_id), cursor=cursor,
                        template=str(form.get("template") or ""), errors=errors,
                        entered=entered)
    return page(ctx.request, "register.html", context, status=422)


# ---------------------------------------------------------------------------------------------
# Satisfaction


def _by(items: list[dict[str, Any]], *keys: str) -> dict[tuple[Any, ...], int]:
    return {tuple(item.get(k) for k in keys): n for n, item in enumerate(items)}


def _grid(report: dict[str, Any], section: str, keys: tuple[str, ...],
          months: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows of the period's `section` (stages or questions), each with its figure in every
    shown month: (data path, the API's entry) or None where that month had no answer."""
    rows = []
    for n, entry in enumerate(report[section]):
        key = tuple(entry.get(k) for k in keys)
        cells = []
        for m, month in months:
            where = _by(month.get(section, []), *keys).get(key)
            cells.append(None if where is None else
                         (f"months.{m}.{section}.{where}", month[section][where]))
        rows.append({"entry": entry, "path": f"{section}.{n}", "cells": cells})
    return rows


@router.get("/satisfaction")
def satisfaction_page(ctx: C) -> Response:
    tz = ctx.tz()
    start, end = _query(ctx.request, "from"), _query(ctx.request, "to")
    specialist = _query(ctx.request, "specialist")
    segment = _query(ctx.request, "segment")
    by_segment = _query(ctx.request, "by_segment") is not None
    report = ctx.read("satisfaction", from_=_instant(start, tz), to=_instant(end, tz, True),
                      specialist=specialist, segment=segment, by_segment=by_segment or None,
                      **ctx.moments())
    this_month = datetime.fromisoformat(report["at"]).astimezone(
        ZoneInfo(report["timezone"])).strftime("%Y-%m")
    months = list(enumerate(report["months"]))[-MONTHS_SHOWN:]
    stages = _grid(report, "stages", ("stage",), months)
    questions = _grid(report, "questions", ("template_id", "question_id"), months)
    chart = {"type": "bar", "y": {"title": "% satisfied", "min": 0, "max": 100},
             "labels": [s["stage"] for s in report["stages"]],
             "datasets": [{"label": month["month"] + (" (this month)"
                                                      if month["month"] == this_month else ""),
                           "data": [None if c is None or c[1]["percent"] is None
                                    else float(c[1]["percent"])
                                    for c in (row["cells"][k] for row in stages)]}
                          for k, (_m, month) in enumerate(months)]}
    extra = {k: v for k, v in report.items() if k not in {
        "at", "as_of", "timezone", "from", "to", "specialist", "segment", "surveys",
        "fully_satisfied",
        "questions", "stages", "stages_worst_first", "complaints", "months"}}
    return page(ctx.request, "satisfaction.html", {
        **ctx.base("satisfaction", "Satisfaction"), "report": report, "months": months,
        "this_month": this_month, "stages": stages, "questions": questions, "chart_spec": chart,
        "extra": extra, "start": start or "", "end": end or "", "specialist": specialist or "",
        "segments": SEGMENTS if reads.accepts("satisfaction", "segment") else (),
        "segment": segment or "", "by_segment": by_segment, "names": _names(ctx)})


# ---------------------------------------------------------------------------------------------
# Payments


def _names(ctx: Ctx) -> dict[str, str]:
    """Specialists' names for the roles that may read them (GET /v1/specialists); else ids."""
    if not ctx.may("specialists"):
        return {}
    return {s["specialist_id"]: s["name"] for s in ctx.read("specialists")["items"]}


def _curve(line: dict[str, Any], dates: list[str], name: str, last: int,
           detail: bool) -> list[dict[str, Any]]:
    """One line's datasets: its cumulative share by day and, with `detail`, its two forecasts
    to the period's end (from today's share) and its 80%-by-the-20th marks. Figures as the
    API gives them."""
    by_date = {d["date"]: d for d in line.get("daily", [])}
    share = [None if by_date.get(d, {}).get("percent_of_plan") is None
             else float(by_date[d]["percent_of_plan"]) for d in dates]
    out: list[dict[str, Any]] = [{"label": name, "data": share, "thin": not detail}]
    if not detail:
        return out
    today = next((i for i in range(len(share) - 1, -1, -1) if share[i] is not None), None)
    forecast = line.get("forecast") or {}
    for key, label, style in (
            ("straight_line_percent_of_plan", "forecast, straight line", "straight"),
            ("expected_percent_of_plan", "forecast, expected payments", "expected")):
        if today is not None and forecast.get(key) is not None and last > today:
            points: list[float | None] = [None] * (last + 1)
            points[today], points[last] = share[today], float(forecast[key])
            out.append({"label": f"{name}: {label}", "forecast": style, "data": points})
    marks: list[float | None] = [None] * (last + 1)
    for mark in line.get("marks", []):
        if mark.get("target_percent_of_plan") is not None and mark["date"] in dates:
            marks[dates.index(mark["date"])] = float(mark["target_percent_of_plan"])
    if any(m is not None for m in marks):
        out.append({"label": "80% of plan by the 20th", "target": True, "data": marks})
    return out


@router.get("/payments")
def payments_page(ctx: C) -> Response:
    period = _query(ctx.request, "period") or _query(ctx.request, "month")
    specialist = _query(ctx.request, "specialist")
    sort = _query(ctx.request, "debtors_sort")
    cursor = _query(ctx.request, "debtors_cursor")
    report = ctx.read("payments", period=period, month=period if period and "Q" not in period
                      else None, specialist=specialist, debtors_sort=sort,
                      debtors_cursor=cursor, limit=DEBTORS_PER_PAGE, **ctx.moments())
    names = _names(ctx)
    first, last_day = report.get("first_day"), report.get("last_day")
    dates: list[str] = []
    if first and last_day:
        day, end = date.fromisoformat(first), date.fromisoformat(last_day)
        while day <= end:
            dates.append(day.isoformat())
            day += timedelta(days=1)
    # The totals (or the one specialist asked for) in detail; each specialist's curve beside.
    datasets: list[dict[str, Any]] = []
    lines = report.get("specialists", [])
    if specialist is None:
        for total in report.get("totals", []):
            datasets += _curve(total, dates, f"All ({total['currency']})", len(dates) - 1,
                               detail=True)
    if specialist is not None or len(lines) <= 12:
        for line in lines:
            who = names.get(line["specialist_id"] or "", str(line["specialist_id"] or "")[:8])
            datasets += _curve(line, dates, f"{who or 'unassigned'} ({line['currency']})",
                               len(dates) - 1, detail=specialist is not None)
    chart = {"type": "line", "labels": dates, "datasets": datasets,
             "x": {"title": "Day"}, "y": {"title": "% of plan collected (cumulative)", "min": 0}}
    known = {"period", "kind", "months", "first_day", "last_day", "tz", "at", "as_of",
             "days_in_period", "day_of_period", "two_months", "previous_business_day",
             "totals", "specialists", "debtors", "acts_not_returned"}
    debtors = report.get("debtors") or {}
    return page(ctx.request, "payments.html", {
        **ctx.base("payments", "Payments"), "report": report, "period": report.get("period"),
        "specialist": specialist or "", "sort": debtors.get("sort") or sort or "",
        "sorts": ("outstanding_desc", "outstanding_asc", "oldest_due", "client"),
        "names": names, "chart_spec": chart,
        "specialists": names or {s["specialist_id"]: s["specialist_id"]
                                 for s in report.get("specialists", []) if s["specialist_id"]},
        "extra": {k: v for k, v in report.items() if k not in known},
        "next_debtors": _link("/console/payments", period=report.get("period"),
                              specialist=specialist, debtors_sort=debtors.get("sort"),
                              debtors_cursor=debtors["next_cursor"], **_asked(ctx))
        if debtors.get("next_cursor") else None,
        "first_debtors": _link("/console/payments", period=report.get("period"),
                               specialist=specialist, debtors_sort=debtors.get("sort"),
                               **_asked(ctx))
        if cursor else None})


# ---------------------------------------------------------------------------------------------
# Reaction times


CLOCKS = ("first_reaction", "resolution")


@router.get("/reactions")
def reactions_page(ctx: C) -> Response:
    tz = ctx.tz()
    q = {name: _query(ctx.request, name) for name in ("from", "to", "kind", "specialist")}
    clock = _query(ctx.request, "clock") or "first_reaction"
    if clock not in CLOCKS:
        raise ConsoleError(422, "clock: first_reaction or resolution")
    scope = {"kind": q["kind"], "specialist": q["specialist"], **ctx.moments()}
    report = ctx.read("reaction_times", from_=_instant(q["from"], tz),
                      to=_instant(q["to"], tz, True), **scope)
    listed = ctx.read("situations", limit=SITUATIONS_CHARTED, **scope)
    breaches = ctx.read("situations", breached=True, limit=100, **scope)
    statuses: dict[str, list[dict[str, Any]]] = {}
    targets = []
    for n, item in enumerate(listed["items"], start=1):
        fig = item.get(clock) or {}
        if fig.get("business_seconds") is None:
            continue
        statuses.setdefault(fig.get("status") or "unknown", []).append(
            {"x": n, "y": fig["business_seconds"] / 3600, "id": item["situation_id"]})
        if fig.get("target_seconds") is not None:
            targets.append({"x": n, "y": fig["target_seconds"] / 3600})
    chart = {"type": "scatter", "x": {"title": "Situations in order of opening", "min": 1},
             "y": {"title": "Business hours", "min": 0},
             "datasets": [{"label": f"{status} ({len(points)})", "status": status,
                           "data": points} for status, points in sorted(statuses.items())]
             + [{"label": "SLA target", "target": True, "data": targets}]}
    return page(ctx.request, "reactions.html", {
        **ctx.base("reactions", "Reaction times"), "report": report, "breaches": breaches,
        "listed": listed, "chart_spec": chart, "clock": clock, "clocks": CLOCKS, "q": q,
        "kinds": [k.value for k in SituationKind], "charted": len(listed["items"]),
        "names": _names(ctx)})


@router.get("/reactions/{situation_id}")
def evidence_page(ctx: C, situation_id: UUID) -> Response:
    found = ctx.read("evidence", situation_id=situation_id,
                     calendar=_query(ctx.request, "calendar"), **ctx.moments())
    return page(ctx.request, "evidence.html", {
        **ctx.base("reactions", f"Evidence of situation {str(situation_id)[:8]}"),
        "evidence": found, "clocks": CLOCKS, "names": _names(ctx),
        "extra": {k: v for k, v in found.items() if k not in {
            "situation_id", "client_id", "kind", "trigger", "trigger_event_id", "specialist_id",
            "status", "at", "as_of", "calendar_basis", "events", "clocks"}}})


# ---------------------------------------------------------------------------------------------
# Audit


@router.get("/audit")
def audit_page(ctx: C) -> Response:
    verified = ctx.read("verify") if _query(ctx.request, "verify") else None
    receipts = ctx.read("receipts", limit=100)
    return page(ctx.request, "audit.html", {
        **ctx.base("audit", "Audit"), "verified": verified, "receipts": receipts})


@router.get("/audit/export")
def audit_export(ctx: C) -> Response:
    """Download a client's or a period's events: the export `crm audit export` writes (the
    same code as GET /v1/audit/events), verifiable offline with tools/verify_export.py."""
    reads.call("receipts", ctx.request, ctx.svc, ctx.who)  # the audit roles, refused as there
    if ctx.svc.export is None:
        raise ConsoleError(503, "export is not available in this process")
    tz = ctx.tz()
    client = _query(ctx.request, "client")
    start = _instant(_query(ctx.request, "from"), tz)
    end = _instant(_query(ctx.request, "to"), tz, True)
    try:
        client_id = UUID(client) if client else None
        since = datetime.fromisoformat(start) if start else None
        until = datetime.fromisoformat(end) if end else None
    except ValueError as error:
        raise ConsoleError(422, f"not a client id or date: {error}") from None
    if (since and since.tzinfo is None) or (until and until.tzinfo is None):
        raise ConsoleError(422, "from/to need a date or an instant with its UTC offset")
    lines = ctx.svc.export(client_id=client_id, recorded_from=since, recorded_to=until)
    name = "crm-export" + (f"-client-{client_id}" if client_id else "") + (
        f"-from-{_query(ctx.request, 'from')}" if since else "") + (
        f"-to-{_query(ctx.request, 'to')}" if until else "") + ".jsonl"

    def body() -> Any:
        for line in lines:
            yield line + b"\n"

    return StreamingResponse(body(), media_type="application/x-ndjson", headers={
        **headers(), "Content-Disposition": f'attachment; filename="{name}"'})


# ---------------------------------------------------------------------------------------------
# Live alerts


@router.get("/alerts/stream")
async def alert_stream(ctx: C) -> Response:
    """The API's alert stream (api.routers.alerts), for a signed-in page."""
    spec = reads.READS["alerts"]
    if ctx.who.role not in spec.roles:
        raise ConsoleError(403, f"the role {ctx.role} may not do this")
    try:
        response: Response = await spec.route(svc=ctx.svc, _who=ctx.who, specialist=None)
    except reads.REFUSALS as error:
        raise reads.refusal(error) from None
    return response


def error_page(request: Request, error: ConsoleError) -> Response:
    if request.headers.get("hx-request"):
        return HTMLResponse(f'<p class="error" role="alert">{_escape(error.message)}</p>',
                            status_code=error.status, headers=headers())
    store = sessions(request)
    session = store.get(request.cookies.get(SESSION_COOKIE))
    base: dict[str, Any] = {"nav": [], "flash": [], "alerts": False, "user": None, "role": None,
                            "csrf": "", "at": "", "as_of": "", "keep": ""}
    if session is not None:
        base.update(nav=[(p, t, False) for p, t, r in NAV if reads.allowed(session.role, r)],
                    user=session.user_id, role=session.role, csrf=session.csrf)
    titles = {401: "Not signed in", 403: "Not allowed", 404: "Not found", 409: "Conflict",
              422: "Not valid", 429: "Too many requests", 503: "Not available"}
    return page(request, "error.html", {**base, "title": titles.get(error.status, "Error"),
                                        "status": error.status, "message": error.message},
                status=error.status)


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))
