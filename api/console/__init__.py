"""The console: the API's reads and the survey form as web pages, at /console.

    session.py  an API key exchanged for an HttpOnly, SameSite=Strict session cookie; CSRF
    reads.py    every figure through the API's own route functions, with the API's roles
    survey.py   the survey form's questions and its write (the write routes' commands)
    pages.py    the pages          render.py  Jinja2 templates and value formatting
    templates/  the HTML           static/    CSS, the console's script and vendored libraries
                                              (static/vendor/NOTICE.md: versions, licences)

Served by the API's own process (`crm serve`), behind the same keys; nothing to build.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.console.pages import NeedSignIn, error_page, router
from api.console.reads import ConsoleError
from api.console.session import SessionStore

__all__ = ["mount"]


def mount(app: FastAPI) -> None:
    """Serve the console at /console on this app (its sessions live in this process)."""
    app.state.console_sessions = SessionStore()
    app.mount("/console/static", StaticFiles(packages=[("api.console", "static")]),
              name="console-static")
    app.include_router(router, prefix="/console")

    @app.exception_handler(NeedSignIn)
    async def _sign_in(request: Request, exc: NeedSignIn) -> Response:
        target = "/console/sign-in?next=" + quote(exc.back, safe="")
        if request.headers.get("hx-request"):  # htmx: send the whole page there
            return HTMLResponse("", status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(ConsoleError)
    async def _refused(request: Request, exc: ConsoleError) -> Response:
        return error_page(request, exc)
