"""The API baseline: a bare FastAPI app answering a constant, served like `crm serve` serves ours.

Run as `python -m bench.bare --port P`: the same `uvicorn.run` call and log level as `crm serve`
(one worker, default loop and HTTP implementation).
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import FastAPI

CONSTANT = {"id": "00000000-0000-0000-0000-000000000000", "version": 1, "position": 1}


def create_bare() -> FastAPI:
    app = FastAPI(title="bench baseline")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/const")
    def read_constant() -> dict[str, Any]:
        return CONSTANT

    @app.post("/const", status_code=201)
    def write_constant(body: dict[str, Any]) -> dict[str, Any]:
        return CONSTANT

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    uvicorn.run(create_bare(), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
