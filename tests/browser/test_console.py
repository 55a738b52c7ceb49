"""The console in chromium, on a demo history: every page's figures equal the API's answer.

Each figure a page shows carries the API's exact value and where it sits in the API's answer
(`<data value=... data-path=...>`); the tests read them all and look each one up in the answer
of the same read through the API, with the same key and moment. The survey form is filled and
saved with the keyboard and the events checked through the API; the time slider is moved and
the two past cards compared with the API's `at`/`as_of` reads. A screenshot of every page is
written to the folder printed at the end of the run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from domain.values import Role
from tests.browser.conftest import Console, remember_screenshot

# Today's card is read at "now" on both sides: these two move with the clock between the reads.
NOW_RELATIVE = ("at", "last_dissatisfaction.since")

ROOT = Path(__file__).resolve().parents[2]
UNLABELLED = """() => Array.from(document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button')).filter(el => {
  if (el.tagName === 'BUTTON') return !el.textContent.trim() && !el.getAttribute('aria-label');
  return !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
    && !el.getAttribute('aria-labelledby');
}).map(el => el.outerHTML.slice(0, 160))"""
FIGURES = """(root) => Array.from(document.querySelectorAll(root + ' data[data-path]')).map(
    el => [el.dataset.path, el.getAttribute('value')])"""


def raw(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def value_at(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def compare(page: Any, answer: Any, *, prefix: str = "", root: str = "main",
            skip: tuple[str, ...] = ()) -> int:
    """Every figure under `prefix` on the page equals the API's value at its path."""
    shown = [(p[len(prefix):], v) for p, v in page.evaluate(FIGURES, root)
             if p.startswith(prefix)]
    wrong = []
    for path, value in shown:
        if path in skip:
            continue
        try:
            expected = raw(value_at(answer, path))
        except (KeyError, IndexError, ValueError, TypeError) as error:
            wrong.append(f"{prefix}{path}: shown {value!r}, not in the API's answer "
                         f"({error!r}; answer has {sorted(answer)[:8]})")
            continue
        if expected != value:
            wrong.append(f"{prefix}{path}: shown {value!r}, API {expected!r}")
    assert not wrong, "\n".join(wrong[:30])
    return len(shown)


class Watched:
    """A page with its console errors (a CSP refusal or a script error is one) collected."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("response", lambda r: self.errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and r.request.resource_type != "document" else None)

    def check(self) -> None:
        """No script error, every control labelled, every form that posts carries the CSRF
        token."""
        page = self.page
        assert not self.errors, self.errors
        assert page.evaluate(UNLABELLED) == []
        tokens = page.eval_on_selector_all(
            "form[method=post]", "fs => fs.map(f => (f.querySelector('input[name=csrf]')"
                                 " || {}).value || '')")
        assert all(len(t) > 20 for t in tokens), tokens


def sign_in(console: Console, page: Any, role: Role, path: str = "/console") -> None:
    page.goto(console.url + path)
    assert "/console/sign-in" in page.url
    page.fill("#key", console.keys[role])
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/console/sign-in" not in url)


def shoot(console: Console, page: Any, name: str) -> None:
    """What a person sees on opening the page (the top, one screen)."""
    path = console.screenshots / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path))
    remember_screenshot(path)


@pytest.fixture
def moment(console: Console) -> dict[str, str]:
    """One moment for both sides of a report comparison, after the fixture's own writes:
    figures of running clocks and "now"-relative states cannot move between the reads."""
    at = datetime.now(UTC).isoformat()
    return {"at": at, "as_of": at}


@pytest.fixture
def as_role(console: Console, browser: Any) -> Iterator[Any]:
    contexts = []

    def open_as(role: Role, path: str = "/console") -> Watched:
        context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                      accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        watched = Watched(page)
        sign_in(console, page, role, path)
        return watched

    yield open_as
    for context in contexts:
        context.close()


def test_sign_in_exchanges_the_key_for_an_httponly_strict_cookie(console: Console,
                                                                  browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(console.url + "/console/payments")
    assert "/console/sign-in?next=%2Fconsole%2Fpayments" in page.url
    shoot(console, page, "sign-in")
    page.fill("#key", "crm_nobody_0123456789abcdefghijklmnop")
    page.click("form.sign-in button")
    assert "unknown or revoked" in page.inner_text("main")
    page.fill("#key", console.keys[Role.MANAGER])
    page.click("form.sign-in button")
    assert page.url.endswith("/console/payments")
    cookie = next(c for c in context.cookies() if c["name"] == "crm_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    assert console.keys[Role.MANAGER] not in json.dumps(context.cookies())
    assert "crm_console" not in page.evaluate("document.cookie")
    # A post without the session's CSRF token is refused; the session goes on.
    assert page.request.post(console.url + "/console/sign-out", form={}).status == 403
    page.goto(console.url + "/console/satisfaction")
    assert page.url.endswith("/console/satisfaction")
    page.click("form.who button")  # sign out
    assert "/console/sign-in" in page.url
    # The old cookie no longer opens anything.
    stale = browser.new_context()
    stale.add_cookies([{**cookie}])
    other = stale.new_page()
    other.goto(console.url + "/console/satisfaction")
    assert "/console/sign-in" in other.url
    stale.close()
    context.close()


def test_clients_search_card_timeline_and_time_slider(console: Console, as_role: Any) -> None:
    watched = as_role(Role.OPERATOR, "/console/clients")
    page = watched.page
    card = console.get(f"/v1/clients/{console.client_id}/card", Role.OPERATOR)
    word = card["profile"]["name"].split()[0]
    page.fill("#q", word)  # htmx searches as you type
    page.wait_for_url(re.compile(r"q="))
    page.wait_for_selector(f"#client-list a[href$='{console.client_id}']")
    listed = console.get("/v1/clients", Role.OPERATOR, q=word, limit=50)
    assert compare(page, listed) >= 7 * len(listed["items"]) > 0
    watched.check()
    shoot(console, page, "clients")

    page.click(f"#client-list a[href$='{console.client_id}']")
    page.wait_for_selector("#timeline")
    events = console.get(f"/v1/clients/{console.client_id}/events", Role.OPERATOR,
                         limit=500)["items"]
    assert page.locator("#timeline tbody tr").count() == len(events) > 5
    assert compare(page, events, prefix="events.") >= 2 * len(events)
    today = console.get(f"/v1/clients/{console.client_id}/card", Role.OPERATOR)
    assert compare(page, today, prefix="today.", skip=NOW_RELATIVE) > 20

    # The slider, with the keyboard: to the first event, then a third of the way along.
    slider = page.locator("#moment")
    slider.focus()
    page.keyboard.press("Home")
    steps = len(events) // 3
    for _ in range(steps):
        page.keyboard.press("ArrowRight")
    page.locator("#moment-what", has_text=f"Event {steps + 1} of").wait_for()
    assert slider.get_attribute("aria-valuetext", timeout=2000).startswith(f"event {steps + 1}")
    chosen = events[steps]
    known = console.get(f"/v1/clients/{console.client_id}/card", Role.OPERATOR,
                        at=chosen["recorded_at"], as_of=chosen["recorded_at"])
    business = console.get(f"/v1/clients/{console.client_id}/card", Role.OPERATOR,
                           at=chosen["occurred_at"])
    assert compare(page, known, prefix="known.") > 20
    assert compare(page, business, prefix="business.") > 20
    assert known["as_of"] is not None
    watched.check()
    shoot(console, page, "client")


def test_survey_register_records_the_answers_as_events(console: Console, as_role: Any,
                                                        moment: dict[str, str]) -> None:
    watched = as_role(Role.OPERATOR, "/console/register?status=due&" + urlencode(moment))
    page = watched.page
    due = console.get("/v1/work-orders", Role.OPERATOR, survey_status="due", **moment)
    assert compare(page, due) >= 5 * len(due["items"]) > 0
    page.click(f"#register a[href*='wo={console.work_order_id}']")
    page.wait_for_selector("#survey-form")
    templates = console.get("/v1/survey-templates", Role.OPERATOR)["items"]
    questions = templates[0]["versions"][-1]["questions"]
    assert page.locator("#survey-form .question").count() == len(questions)
    # Untick the second question with the keyboard: its complaint field appears, required.
    unticked = questions[1]
    box = page.locator(f"#ok-{unticked['id']}")
    box.focus()
    page.keyboard.press("Space")
    assert not box.is_checked()
    complaint = page.locator(f"#complaint-{unticked['id']}")
    assert complaint.is_visible() and complaint.get_attribute("required") is not None
    assert page.locator(f"#complaint-{questions[0]['id']}").is_hidden()
    watched.check()
    shoot(console, page, "register")
    page.click("#survey-form button[type=submit]")  # empty complaint: the browser refuses
    assert page.locator("#survey-form").count() == 1
    assert page.evaluate(f"!document.getElementById('complaint-{unticked['id']}')"
                         ".checkValidity()")
    text = "Nobody called back about the estimate."
    complaint.fill(text)
    page.fill("#comment", "Console test call")
    page.click("#survey-form button[type=submit]")
    page.wait_for_selector(".flash")
    assert "Saved the survey" in page.inner_text(".flash")
    watched.check()

    events = console.get(f"/v1/clients/{console.client_id}/events", Role.OPERATOR,
                         limit=500)["items"]
    answers = ("SurveyStarted", "SurveyTickSet", "SurveyCompleted", "ComplaintRegistered")
    tail = [e for e in events if e["actor"]["user"] == "operator-console"
            and e["type"] in answers]
    kinds = [e["type"] for e in tail]
    assert kinds == ["SurveyStarted", "SurveyTickSet", "SurveyCompleted",
                     "ComplaintRegistered"], kinds
    started, tick, completed, registered = tail
    assert started["data"]["work_order_id"] == console.work_order_id
    assert tick["data"] == {"question_id": unticked["id"], "ticked": False}
    assert completed["data"]["outcome"] == "completed"
    assert completed["data"]["comment"] == "Console test call"
    assert completed["data"]["final_ticks"][unticked["id"]] is False
    assert registered["data"]["text"] == text
    assert registered["data"]["stage"] == unticked["stage"]
    done = console.get("/v1/work-orders", Role.OPERATOR, survey_status="done", limit=500)
    assert any(i["work_order_id"] == console.work_order_id for i in done["items"])


def test_satisfaction_payments_and_reaction_times_show_the_apis_figures(
        console: Console, as_role: Any, moment: dict[str, str]) -> None:
    at = moment["at"]
    q = urlencode(moment)
    watched = as_role(Role.MANAGER, f"/console/satisfaction?{q}")
    page = watched.page
    report = console.get("/v1/reports/satisfaction", Role.MANAGER, **moment)
    assert compare(page, report) > 40
    assert page.locator("#chart-stages[data-drawn]").count() == 1
    watched.check()
    shoot(console, page, "satisfaction")

    page.goto(f"{console.url}/console/payments?{q}")
    report = console.get("/v1/reports/payments", Role.MANAGER, limit=20, **moment)
    assert compare(page, report) > 40
    assert page.locator("#chart-payments[data-drawn]").count() == 1
    assert page.locator("#payments tbody tr").count() == len(report["specialists"])
    if report["debtors"]["next_cursor"]:
        page.click("a[rel=next]")
        page.wait_for_url(re.compile("debtors_cursor"))
        following = console.get("/v1/reports/payments", Role.MANAGER, limit=20,
                                debtors_cursor=report["debtors"]["next_cursor"], **moment)
        assert compare(page, following) > 40
    quarter = f"{at[:4]}-Q{(int(at[5:7]) - 1) // 3 + 1}"
    page.goto(f"{console.url}/console/payments?period={quarter}&{q}")
    report = console.get("/v1/reports/payments", Role.MANAGER, period=quarter, limit=20,
                         **moment)
    assert report["kind"] == "quarter"
    assert compare(page, report) > 40
    # Last month, whole: the head's curve against plan, marks and forecasts.
    year, month = int(at[:4]), int(at[5:7])
    last = f"{year - (month == 1)}-{(month - 2) % 12 + 1:02d}"
    page.goto(f"{console.url}/console/payments?period={last}&{q}")
    report = console.get("/v1/reports/payments", Role.MANAGER, period=last, limit=20,
                         **moment)
    assert compare(page, report) > 100
    assert any(line["plan"] for line in report["specialists"])
    watched.check()
    shoot(console, page, "payments")

    page.goto(f"{console.url}/console/reactions?{q}")
    report = console.get("/v1/reports/reaction-times", Role.MANAGER, **moment)
    assert compare(page, report, root="#reaction-groups") > 10
    breaches = console.get("/v1/situations", Role.MANAGER, breached="true", limit=100,
                           **moment)
    assert compare(page, breaches, root="#breaches") >= 6 * len(breaches["items"])
    assert page.locator("#chart-reactions[data-drawn]").count() == 1
    watched.check()
    shoot(console, page, "reactions")

    # A breach's evidence, one click away.
    assert breaches["items"], "the demo history has breaches"
    first = breaches["items"][0]["situation_id"]
    page.click(f"#breaches a[href^='/console/reactions/{first}']")
    page.wait_for_selector("#evidence-events")
    evidence = console.get(f"/v1/situations/{first}/evidence", Role.MANAGER, **moment)
    assert compare(page, evidence) > 20
    watched.check()
    shoot(console, page, "evidence")


def test_audit_verifies_the_chain_lists_receipts_and_exports(console: Console,
                                                             as_role: Any) -> None:
    watched = as_role(Role.AUDITOR, "/console/audit")
    page = watched.page
    page.click("text=Verify the chain now")
    page.wait_for_selector("#verdict")
    verdict = console.get("/v1/audit/verify", Role.AUDITOR)
    assert verdict["ok"] is True
    assert compare(page, {"verify": verdict}, root="#verdict") >= 5
    assert "The chain is intact" in page.inner_text("#verdict")
    receipts = console.get("/v1/audit/receipts", Role.AUDITOR)
    assert compare(page, receipts, prefix="receipts.") >= 5 * len(receipts["items"]) > 0
    watched.check()
    shoot(console, page, "audit")

    page.fill("#client", console.client_id)
    with page.expect_download() as download:
        page.click("text=Download the export")
    lines = Path(download.value.path()).read_bytes().splitlines()
    header, *events, head = (json.loads(line) for line in lines)
    assert header["scope"] == "client" and header["client"] == console.client_id
    listed = console.get("/v1/audit/events", Role.AUDITOR, client=console.client_id,
                         limit=1000)
    assert [e["id"] for e in events] == [e["id"] for e in listed["items"]]
    assert head.get("crmhead") and head.get("sig")  # ends with the signed chain head
    # The standalone verifier accepts the download (docs/audit-format.md).
    verdict = subprocess.run([sys.executable, str(ROOT / "tools" / "verify_export.py"),
                              download.value.path()], capture_output=True, text=True,
                             timeout=60, check=False)
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr


def test_an_analyst_sees_reports_but_no_personal_data(console: Console, as_role: Any) -> None:
    watched = as_role(Role.ANALYST)
    page = watched.page
    nav = page.locator("header nav a").all_inner_texts()
    assert nav == ["Satisfaction", "Payments", "Reaction times"]
    name = console.get(f"/v1/clients/{console.client_id}/card")["profile"]["name"]
    for path in ("/console/satisfaction", "/console/payments", "/console/reactions"):
        page.goto(console.url + path)
        html = page.content()
        assert name not in html
        assert "/console/clients/" not in html
        watched.check()
    for path in ("/console/clients", f"/console/clients/{console.client_id}",
                 "/console/register", "/console/audit", "/console/audit/export"):
        answer = page.goto(console.url + path)
        assert answer is not None and answer.status == 403, path
        assert "may not" in page.inner_text("main")
        assert name not in page.content()


def test_alerts_arrive_live_and_the_reception_alert_shows_on_the_card(
        console: Console, as_role: Any) -> None:
    watched = as_role(Role.OPERATOR, "/console/satisfaction")
    page = watched.page
    page.locator("#alerts-state", has_text="(connected)").wait_for()
    with console.api(Role.OPERATOR) as api:
        made = api.post("/v1/complaints", json={
            "client_id": console.client_id, "text": "The car was not washed.",
            "stage": "delivery", "channel": "phone"})
        assert made.status_code == 201, made.text
        situation = made.json()["links"]["situation_id"]
    page.wait_for_selector(f"#alerts li[data-alert-kind=new_situation] "
                           f"a[href='/console/reactions/{situation}']")
    watched.check()
    # The client comes back: reception's alert arrives, and the card shows what went wrong.
    with console.api(Role.OPERATOR) as api:
        opened = api.post("/v1/work-orders", json={"client_id": console.client_id,
                                                   "asset": "Console test car"})
        assert opened.status_code == 201, opened.text
    page.wait_for_selector("#alerts li[data-alert-kind=reception]")
    page.goto(f"{console.url}/console/clients/{console.client_id}")
    card = console.get(f"/v1/clients/{console.client_id}/card", Role.OPERATOR)
    assert card.get("last_dissatisfaction")
    alert = page.locator("section.reception-alert").first
    assert alert.is_visible()
    assert compare(page, card, prefix="today.", skip=NOW_RELATIVE) > 20
    watched.check()
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline and not page.locator("#alerts li").count():
        time.sleep(0.05)
