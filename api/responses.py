"""Answers serialised once.

A route that returns a dict has it walked by FastAPI's `jsonable_encoder` and then encoded by
`json.dumps`: the body is converted twice. Bodies the code builds are already JSON values
(`domain.catalogue.jsonable`, `api.deps.reveal`), so the hot reads return a `JsonBody`, which
FastAPI sends as it is: one orjson pass, with `jsonable_encoder` only for a value orjson cannot
encode itself."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

_OPTIONS = orjson.OPT_NON_STR_KEYS


def _other(value: Any) -> Any:
    # Decimals, sets, pydantic models and the like: as FastAPI would have encoded them.
    found = jsonable_encoder(value)
    if found is value:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")
    return found


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, default=_other, option=_OPTIONS)


class JsonBody(JSONResponse):
    """application/json, encoded once with orjson."""

    def render(self, content: Any) -> bytes:
        return dumps(content)
