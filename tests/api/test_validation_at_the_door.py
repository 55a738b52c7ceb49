"""Validation at the door: every write checks what the domain and the read side can hold.

Amounts (at most 12 integer digits and 4 decimals, plain notation), ISO 4217 currencies, business
instants in the years 1900..2999 (reads take the same range), and business order within a
record and towards the records a command names. A refused write is a 422 naming the field and
stores nothing; the OpenAPI document states each rule.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from commands.registry import COMMANDS
from domain.errors import InvalidValueError
from domain.values import AMOUNT_PATTERN, MAX_AMOUNT, Money
from tests.support import Api, store_count

REGISTERED = "2026-03-02T09:00:00+00:00"
OPENED = "2026-03-10T09:00:00+00:00"


def client(api: Api) -> str:
    return str(api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                               "name": "Ann Lee", "occurred_at": REGISTERED})["id"])


def work_order(api: Api, client_id: str) -> str:
    return str(api.ok("POST", "/v1/work-orders", {"client_id": client_id, "asset": "car",
                                                   "stages": ["repair"],
                                                   "occurred_at": OPENED})["id"])


def refused(api: Api, method: str, path: str, body: Any, field: str) -> dict[str, Any]:
    """The write is a 422 problem naming `field`, and the store did not move."""
    before = store_count(api.container)
    response = api.request(method, path, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert field in [e["field"] for e in problem["errors"]], problem
    assert store_count(api.container) == before
    return problem


@pytest.mark.parametrize(("amount", "message"), [
    ("1e400", "plain decimal string"),
    ("1E+2", "plain decimal string"),
    ("Infinity", "plain decimal string"),
    (" 10", "plain decimal string"),
    ("+10", "plain decimal string"),
    ("1000000000000", "must not exceed 999999999999.9999"),
    ("1.00001", "at most 4 decimal places"),
    ("-0.01", "must not be negative"),
])
def test_a_payment_amount_the_read_side_cannot_hold_is_refused(any_api: Api, amount: str,
                                                               message: str) -> None:
    problem = refused(any_api, "POST", "/v1/payments", {
        "client_id": client(any_api), "amount": amount, "currency": "EUR"}, "amount")
    assert message in str(problem["errors"])


def test_the_largest_amount_is_stored_and_the_read_side_holds_it(any_api: Api) -> None:
    cid = client(any_api)
    paid = any_api.ok("POST", "/v1/payments", {"client_id": cid, "amount": str(MAX_AMOUNT),
                                               "currency": "EUR",
                                               "occurred_at": "2026-03-15T10:00:00Z"})
    order = work_order(any_api, cid)
    closed = any_api.ok("POST", f"/v1/work-orders/{order}/close",
                        {"amount": str(MAX_AMOUNT), "currency": "EUR"})
    assert closed["position"] > paid["position"]
    card = any_api.get(f"/v1/clients/{cid}/card", params={"min_position": closed["position"]})
    assert card.status_code == 200, card.text
    report = any_api.get("/v1/reports/payments", as_="manager", params={
        "min_position": closed["position"], "month": "2026-03", "at": "2026-03-31T12:00:00Z"})
    assert report.status_code == 200, report.text
    assert str(MAX_AMOUNT) in report.text
    ready = any_api.get("/readyz", as_="admin").json()
    assert ready["ready"], ready


@pytest.mark.parametrize(("currency", "status_field"), [("ZZZ", "currency"),
                                                        ("XXX", "currency"),
                                                        ("eur", "currency")])
def test_a_currency_not_in_iso_4217_is_refused(any_api: Api, currency: str,
                                               status_field: str) -> None:
    refused(any_api, "POST", "/v1/payments", {"client_id": client(any_api), "amount": "10.00",
                                              "currency": currency}, status_field)


def test_a_currency_withdrawn_recently_is_still_taken_for_history(any_api: Api) -> None:
    any_api.ok("POST", "/v1/payments", {"client_id": client(any_api), "amount": "10.00",
                                        "currency": "HRK", "occurred_at": "2022-06-01T10:00:00Z"})


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/work-orders", {"asset": "car", "occurred_at": "0001-01-01T00:00:00Z"}, "occurred_at"),
    ("/v1/work-orders", {"asset": "car", "occurred_at": "1899-12-31T23:59:59Z"}, "occurred_at"),
    # pydantic would guess Unix seconds or milliseconds from a number
    ("/v1/work-orders", {"asset": "car", "occurred_at": 253402300800}, "occurred_at"),
    ("/v1/work-orders", {"asset": "car", "occurred_at": "1700000000"}, "occurred_at"),
    ("/v1/invoices", {"number": "A-1", "amount": "1", "currency": "EUR",
                      "due_at": "3000-01-01T00:00:00Z"}, "due_at"),
])
def test_an_instant_outside_the_years_1900_to_2999_is_refused(any_api: Api, path: str,
                                                              body: dict[str, Any],
                                                              field: str) -> None:
    refused(any_api, "POST", path, {"client_id": client(any_api), **body}, field)


def test_a_plan_month_outside_the_range_is_refused(any_api: Api) -> None:
    specialist = any_api.ok("POST", "/v1/specialists", {"name": "Sam"}, as_="admin")["id"]
    before = store_count(any_api.container)
    response = any_api.request("PUT", f"/v1/plans/{specialist}/0001-01",
                               json={"amount": "10", "currency": "EUR"}, as_="admin")
    assert response.status_code == 422, response.text
    assert "path.month" in [e["field"] for e in response.json()["errors"]], response.text
    assert store_count(any_api.container) == before


def test_closing_a_work_order_before_it_was_opened_is_refused(any_api: Api) -> None:
    order = work_order(any_api, client(any_api))
    problem = refused(any_api, "POST", f"/v1/work-orders/{order}/close", {
        "amount": "10", "currency": "EUR", "occurred_at": "2026-03-09T09:00:00Z"},
        "occurred_at")
    assert "before the work order it concerns was opened" in problem["detail"]


def test_a_complaint_about_a_visit_not_yet_made_is_refused(any_api: Api) -> None:
    cid = client(any_api)
    order = work_order(any_api, cid)
    refused(any_api, "POST", "/v1/complaints", {
        "client_id": cid, "text": "scratched", "work_order_id": order,
        "occurred_at": "2026-03-05T09:00:00Z"}, "occurred_at")


def test_acts_and_payments_are_not_dated_before_their_invoice(any_api: Api) -> None:
    cid = client(any_api)
    invoice = any_api.ok("POST", "/v1/invoices", {
        "client_id": cid, "number": "A-1", "amount": "10", "currency": "EUR",
        "due_at": "2026-04-01T00:00:00Z", "occurred_at": OPENED})["id"]
    refused(any_api, "POST", f"/v1/invoices/{invoice}/act-sent",
            {"occurred_at": "2026-03-09T00:00:00Z"}, "occurred_at")
    refused(any_api, "POST", "/v1/payments", {
        "client_id": cid, "amount": "10", "currency": "EUR", "invoice_id": invoice,
        "occurred_at": "2026-03-09T00:00:00Z"}, "occurred_at")


def test_history_from_before_the_registration_is_taken(any_api: Api) -> None:
    """Registration is when the CRM learned of the client, not a bound (docs/decisions.md)."""
    cid = client(any_api)
    order = any_api.ok("POST", "/v1/work-orders", {"client_id": cid, "asset": "car",
                                                   "occurred_at": "2025-11-20T10:00:00Z"})
    card = any_api.get(f"/v1/clients/{cid}/card", params={"min_position": order["position"]})
    assert card.status_code == 200, card.text
    ready = any_api.get("/readyz", as_="admin").json()
    assert ready["ready"], ready


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/clients/{cid}/contacts",
     {"channel": "phone", "direction": "inbound", "topic": "a\u0000b"}, "topic"),
    ("/v1/clients/{cid}", {"tags": ["vip\u0000"]}, "tags"),
    ("/v1/work-orders", {"client_id": "{cid}", "asset": "car", "stages": ["wash\u0000"]},
     "stages"),
])
def test_text_postgresql_cannot_hold_is_refused_on_both_backends(any_api: Api, path: str,
                                                                 body: dict[str, Any],
                                                                 field: str) -> None:
    """A NUL character was accepted and then parked by the read models on PostgreSQL."""
    cid = client(any_api)
    method = "PATCH" if path == "/v1/clients/{cid}" else "POST"
    filled = {k: (v.format(cid=cid) if isinstance(v, str) else v) for k, v in body.items()}
    refused(any_api, method, path.format(cid=cid), filled, field)


def test_a_bad_item_refuses_the_whole_batch(any_api: Api) -> None:
    cid = client(any_api)
    refused(any_api, "POST", "/v1/batch", {"items": [
        {"command": "receive_payment",
         "data": {"client_id": cid, "amount": "10", "currency": "EUR"}},
        {"command": "receive_payment",
         "data": {"client_id": cid, "amount": "1e400", "currency": "EUR"}},
    ]}, "items.1.data.amount")
    order = work_order(any_api, cid)
    refused(any_api, "POST", "/v1/batch", {"items": [
        {"command": "receive_payment",
         "data": {"client_id": cid, "amount": "10", "currency": "EUR"}},
        {"command": "close_work_order", "data": {
            "work_order_id": order, "amount": "1", "currency": "EUR",
            "occurred_at": "2026-03-01T00:00:00Z"}},
    ]}, "items.1.data.occurred_at")
    refused(any_api, "POST", "/v1/batch", {"items": [
        {"command": "receive_payment",
         "data": {"client_id": cid, "amount": "10", "currency": "EUR"}},
        {"command": "log_contact", "data": {
            "client_id": cid, "channel": "phone", "direction": "inbound", "topic": "\u0000"}},
    ]}, "items.1.data.topic")


@pytest.mark.parametrize("path", [
    "/v1/clients/{cid}/card", "/v1/reports/payments", "/v1/reports/satisfaction",
    "/v1/reports/reaction-times", "/v1/situations", "/v1/clients"])
@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_reads_take_the_instants_writes_take(api: Api, path: str, at: str) -> None:
    cid = client(api)
    response = api.get(path.format(cid=cid), params={"at": at}, as_="admin")
    assert response.status_code == 422, response.text
    assert "query.at" in [e["field"] for e in response.json()["errors"]]


@pytest.mark.parametrize("cursor", ["1_" + "-" * 36,
                                    "99999999999999999999_5b7e2c19-0f4d-4a8b-9d61-2e8c5a7f3b42"])
def test_a_situation_cursor_that_is_no_cursor_is_a_problem_not_a_500(api: Api,
                                                                    cursor: str) -> None:
    response = api.get("/v1/situations", params={"cursor": cursor}, as_="admin")
    assert response.status_code == 422, response.text
    assert "query.cursor" in [e["field"] for e in response.json()["errors"]]


def test_an_unknown_zone_is_a_problem_naming_it(api: Api) -> None:
    response = api.get("/v1/reports/payments", params={"month": "2026-03", "tz": "Mars/Base"},
                       as_="admin")
    assert response.status_code == 422
    assert "query.tz" in [e["field"] for e in response.json()["errors"]]


def test_commands_refuse_at_the_source_for_every_entry_point() -> None:
    """The API, the batch and the Kafka ingest all validate through these models."""
    data = {"client_id": "5b7e2c19-0f4d-4a8b-9d61-2e8c5a7f3b42", "currency": "EUR"}
    with pytest.raises(ValidationError):
        COMMANDS["receive_payment"].model_validate({**data, "amount": "1e400"})
    with pytest.raises(ValidationError):
        COMMANDS["receive_payment"].model_validate({**data, "amount": "1", "currency": "ZZZ"})
    with pytest.raises(ValidationError):
        COMMANDS["define_survey_template"].model_validate({"name": "t", "questions": [
            {"id": "q1", "text": "Fixed?\u0000", "stage": "repair"}]})
    with pytest.raises(ValidationError):
        COMMANDS["open_work_order"].model_validate({
            "client_id": data["client_id"], "asset": "car", "occurred_at": "0001-01-01T00:00Z"})


def test_the_domain_refuses_what_it_cannot_hold() -> None:
    for amount in ("1e400", "1000000000000"):
        with pytest.raises(InvalidValueError) as caught:
            Money.parse(amount, "EUR")
        assert caught.value.field == "amount"
    with pytest.raises(InvalidValueError) as caught:
        Money.parse("1", "ZZZ")
    assert caught.value.field == "currency"
    assert str(Money.parse("1E+2", "EUR").amount) == "100"


def test_the_openapi_document_states_every_rule(api: Api) -> None:
    doc = api.get("/openapi.json", as_=None).json()
    schemas = doc["components"]["schemas"]
    payment = schemas["ReceivePaymentBody"]["properties"]
    assert payment["amount"]["pattern"] == AMOUNT_PATTERN
    assert str(MAX_AMOUNT) in payment["amount"]["description"]
    currency = payment["currency"]
    assert "EUR" in currency["enum"] and "ZZZ" not in currency["enum"]
    occurred = next(o for o in payment["occurred_at"]["anyOf"] if o.get("type") == "string")
    assert occurred["format"] == "date-time" and occurred["pattern"] == r"^(19|2\d)\d\d-"
    assert "1900" in payment["occurred_at"]["description"]
    assert "before the start of a record" in payment["occurred_at"]["description"]
    invoice_due = schemas["IssueInvoiceBody"]["properties"]["due_at"]
    assert invoice_due["pattern"] == r"^(19|2\d)\d\d-"
    card = doc["paths"]["/v1/clients/{client_id}/card"]["get"]["parameters"]
    at = next(p for p in card if p["name"] == "at")
    at_string = next(o for o in at["schema"]["anyOf"] if o.get("type") == "string")
    assert at_string["pattern"] == r"^(19|2\d)\d\d-"
    plan = doc["paths"]["/v1/plans/{specialist_id}/{month}"]["put"]["parameters"]
    month = next(p for p in plan if p["name"] == "month")
    assert month["schema"]["pattern"].startswith("^(19|2")
