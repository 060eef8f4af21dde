"""What the web app refuses, and how its API documents every answer it can give.

- ``RequestBodyLimit``: a request body over the limit (``paperscope.limits``: ``max_upload_bytes``
  for a multipart upload, ``max_body_bytes`` for anything else) is refused with 413 and a message
  naming the limit, before the app or the sign-in check reads it. A declared ``Content-Length``
  over the limit is refused at once; a chunked body is counted as it arrives.
- ``LimitExceeded`` (a search query over ``max_query_chars``) becomes a 400 page or JSON error.
- ``document_api_errors``: the OpenAPI schema lists the errors every operation can answer with,
  so that what the API documents is what it does: 400 (the app's answer to a parameter or body it
  cannot read, which FastAPI would document as 422), 413 for operations with a body, and in server
  mode 401 (not signed in) and 403 (another site, a missing CSRF token, not an administrator).
  Errors particular to one operation (404, 415, 429) are declared on the route with ``errors(...)``,
  and the parameter types below say in the schema what a route takes (years, days, row ids).
- ``allowed_methods``: the ``Allow`` header of a 405, every method of the path.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Annotated, Any, Callable, Literal

from fastapi import Path as PathParam
from pydantic import BeforeValidator, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from paperscope import limits
from paperscope.web import models as m

ERROR_DESCRIPTIONS = {
    400: "A parameter or the body could not be read, or is over a limit (the message says which).",
    401: "Sign in first, or send an API token (Authorization: Bearer pst_...).",
    403: "Refused: the request came from another site, lacks the session's CSRF token (X-CSRF-Token), "
         "or needs an administrator.",
    404: "The catalogue has no such thing (the message says what is missing).",
    413: "The request body is over the size limit.",
    415: "Send JSON (Content-Type: application/json).",
    429: "Busy: other work of this kind is under way; ask again after Retry-After seconds.",
}

ErrorPage = Callable[[Request, int, str], Response]

# What the API's parameters accept, said in the schema so that every value it allows is one the
# route takes ("" stays accepted where the pages' forms send an empty field).
YearOrEmpty = Annotated[int, Field(ge=1000, le=9999)] | Literal[""]
ProgramYearOrEmpty = Annotated[int, Field(ge=1900, le=2200)] | Literal[""]
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date_text(value: object) -> object:
    # pydantic also reads "0" or "1700000000" as a date (a Unix time): a day is written YYYY-MM-DD
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("give the day as YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]
DayOrAll = IsoDate | Literal["all", ""]
DateOrEmpty = IsoDate | Literal[""]
# Row ids: the largest integer every JSON reader keeps exact (both databases take 64 bits).
ROW_ID_MAX = 2**53 - 1
RowId = Annotated[int, PathParam(ge=1, le=ROW_ID_MAX)]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: these error statuses, each with the ``ErrorOut`` body."""
    return {code: {"model": m.ErrorOut, "description": ERROR_DESCRIPTIONS[code]} for code in codes}


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` when a body passes the limit: FastAPI lets an ``HTTPException`` from a
    body read through, so the app's error page renders it; before routing, the middleware does."""

    def __init__(self, message: str):
        super().__init__(status_code=413, detail=message)


class RequestBodyLimit:
    """Plain ASGI middleware refusing request bodies over the limit (see the module's docstring)."""

    def __init__(self, app, error_page: ErrorPage):
        self.app = app
        self.error_page = error_page

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit, kind, setting = body_limit(_header(scope, b"content-type"))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            return await self._refuse(scope, receive, send, too_large(declared, limit, kind, setting))
        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(too_large(None, limit, kind, setting))
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await self._refuse(scope, receive, send, exc.detail)

    async def _refuse(self, scope, receive, send, message: str) -> None:
        response = self.error_page(Request(scope), 413, message)
        response.headers["connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)


def body_limit(content_type: str) -> tuple[int, str, str]:
    """(bytes, what the limit is for, the setting that changes it) for a body of this content type."""
    current = limits.current()
    if content_type.lower().startswith("multipart/form-data"):
        return current.max_upload_bytes, "an upload", limits.setting_name("max_upload_bytes")
    return current.max_body_bytes, "a request body", limits.setting_name("max_body_bytes")


def too_large(size: int | None, limit: int, kind: str, setting: str) -> str:
    said = f"is {limits.size_text(size)}" if size is not None else "is larger than that"
    return (f"This server takes at most {limits.size_text(limit)} in {kind}; this one {said} "
            f"({setting} raises the limit).")


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    """The ``Allow`` header of a 405: every method some route takes at this path. Starlette names only
    the first route it meets, and the GET and POST of one path are two routes here."""
    return ", ".join(methods_at(request.scope))


def methods_at(scope) -> list[str]:
    """The methods the app's routes take at this request's path (none: no such path)."""
    from starlette.routing import Match

    routes = scope["app"].router.routes
    return [method for method in HTTP_METHODS
            if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in routes)]


def wrong_method(scope) -> bool:
    """Whether the path exists but takes other methods than this request's (a 405)."""
    allowed = methods_at(scope)
    return bool(allowed) and scope["method"] not in allowed


def install(app, error_page: ErrorPage) -> None:
    """Body limits, query-length refusals and the documented errors, in ``app``."""
    from starlette.middleware import Middleware

    # inside SecurityHeaders, so that refusals carry the same headers as every page
    position = next((i + 1 for i, mw in enumerate(app.user_middleware) if mw.cls.__name__ == "SecurityHeaders"), 0)
    app.user_middleware.insert(position, Middleware(RequestBodyLimit, error_page=error_page))

    async def over_limit(request: Request, exc: limits.LimitExceeded):
        return error_page(request, exc.status, str(exc))

    app.add_exception_handler(limits.LimitExceeded, over_limit)
    document_api_errors(app)


def document_api_errors(app) -> None:
    """Make ``app.openapi()`` list the errors common to every operation (see the module's docstring)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            server_mode = getattr(app.state, "accounts", None) is not None
            add_common_errors(schema, server_mode)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def add_common_errors(schema: dict[str, Any], server_mode: bool) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ErrorOut", m.ErrorOut.model_json_schema())
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # validation errors are answered with 400 (web/app.py: bad_request)
            codes = [400] + ([413] if "requestBody" in operation else []) + ([401, 403] if server_mode else [])
            for code in codes:
                responses.setdefault(str(code), _error_response(code))
    if "#/components/schemas/HTTPValidationError" not in json.dumps(schema.get("paths", {})):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)


def _error_response(code: int) -> dict[str, Any]:
    return {"description": ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}


def _header(scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


def _content_length(scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value.isdigit() else None
