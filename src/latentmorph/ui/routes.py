"""Gradio's routes for calling events by name, closed: the page calls its events through the
queue; scripts get no way in by guessing an event's name (`/gradio_api/call/NAME`)."""

from __future__ import annotations

import re
from typing import Any

from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse

CLOSED = re.compile(r"(?:/gradio_api)?/(?:call|run|api)/")
"""Paths of Gradio's API calls by event name (also with a trailing event id or slash)."""


class ClosedApiRoutes:
    """ASGI middleware answering 404 to Gradio's calls of events by name."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and CLOSED.match(scope.get("path", "")):
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


MIDDLEWARE = [Middleware(ClosedApiRoutes)]
"""What `launch` gives the server app."""
