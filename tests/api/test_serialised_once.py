"""Issue 16.4: the hot reads are serialised once (orjson), not walked by FastAPI's
jsonable_encoder first, and the bytes mean what the encoder would have made of them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

import pytest
from fastapi import routing
from fastapi.encoders import jsonable_encoder

from api.responses import dumps
from tests.support import Api


class Colour(StrEnum):
    RED = "red"


@pytest.mark.parametrize("value", [
    {"id": UUID("12345678-1234-5678-1234-567812345678"), "n": 1, "f": 0.1, "none": None},
    {"at": datetime(2026, 12, 5, 9, 30, tzinfo=UTC),
     "there": datetime(2026, 12, 5, 9, 30, 0, 120, tzinfo=timezone(timedelta(hours=3)))},
    {"amount": Decimal("12.50"), "tags": {"b"}, "kind": Colour.RED, "pair": (1, "x")},
    {"nested": [{"deep": [1, 2, {"x": "ÿ\u2028"}]}], "empty": {}},
])
def test_the_bytes_mean_what_fastapi_would_have_sent(value: Any) -> None:
    assert json.loads(dumps(value)) == json.loads(json.dumps(jsonable_encoder(value)))


def test_the_card_and_brief_skip_the_second_encoding(api: Api,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    client = api.ok("POST", "/v1/clients", {
        "kind": "customer", "form": "person", "name": "Ann Lee", "phones": ["+15551234567"]})
    walked: list[Any] = []
    real = routing.jsonable_encoder

    def counting(value: Any, *args: Any, **kwargs: Any) -> Any:
        walked.append(value)
        return real(value, *args, **kwargs)

    monkeypatch.setattr(routing, "jsonable_encoder", counting)
    card = api.get(f"/v1/clients/{client['id']}/card")
    brief = api.get(f"/v1/clients/{client['id']}/brief?purpose=complaint")
    assert card.status_code == 200 and brief.status_code == 200, (card.text, brief.text)
    assert card.json()["profile"]["name"] == "Ann Lee"
    assert card.headers["content-type"] == "application/json"
    assert walked == []
    # a route left as it was still goes through the encoder: the count is real
    assert api.get("/v1/clients").status_code == 200
    assert walked
