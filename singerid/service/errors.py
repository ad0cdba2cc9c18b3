"""The service's one error boundary: every failure becomes ``{"error": "<one line>", "kind": "..."}``.

Library errors keep their class name as ``kind`` and get the status that says whose fault it
is; errors of the service itself (upload too large, missing token) have their own kinds. An
unexpected exception is logged with its traceback on the server and answered with a 500 that
names only its type: the client never sees a traceback.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from singerid.errors import ArtefactError, AudioError, DatasetError, ParameterError, SingeridError

STATUS_OF: tuple[tuple[type[SingeridError], int], ...] = (  # first match wins
    (ParameterError, 400),  # a bad option or form field: the client's fault
    (AudioError, 422),  # the upload is not usable audio
    (DatasetError, 404),  # e.g. no such singer
    (ArtefactError, 503),  # the home cannot answer (model or index missing, mismatched)
    (SingeridError, 400),
)
HTTP_KINDS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
              413: "UploadTooLarge"}


class ServiceError(SingeridError):
    """An error of the service itself, with its HTTP status, kind and extra headers or fields."""

    def __init__(self, message: str, *, status: int, kind: str, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.headers, self.extra = status, kind, headers, extra or {}


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def error_response(message: str, kind: str, status: int, headers: dict[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, "kind": kind, **extra}, status_code=status, headers=headers)


def install_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(one_line(exc), exc.kind, exc.status, exc.headers, **exc.extra)

    @app.exception_handler(SingeridError)
    async def library_error(request: Request, exc: SingeridError) -> JSONResponse:
        status = next(code for cls, code in STATUS_OF if isinstance(exc, cls))
        return error_response(one_line(exc), type(exc).__name__, status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            where = ".".join(str(part) for part in e.get("loc", ()) if part not in ("query", "path", "body"))
            got = f", got {e['input']!r}" if e.get("input") is not None else ""
            problems.append(f"{where}: {e.get('msg', 'invalid')}{got}")
        return error_response("; ".join(problems) or "invalid request", "ParameterError", 400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(str(exc.detail), HTTP_KINDS.get(exc.status_code, "HTTPError"), exc.status_code,
                              getattr(exc, "headers", None))

    @app.exception_handler(Exception)  # Starlette re-raises after answering, so the server logs the traceback
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        return error_response(f"internal error ({type(exc).__name__}); the server log has the details",
                              "InternalError", 500)


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with a JSON 413, before or while reading.

    A declared Content-Length over the limit is refused before the app sees the request; a body
    that grows past it (chunked uploads) is cut off, and whatever the app answers is replaced by
    the 413. The rest of the body is read and dropped first (up to ``DRAIN_FACTOR`` times the
    limit), so that the client, still sending, gets the answer instead of a reset connection.
    """

    DRAIN_FACTOR = 4

    def __init__(self, app: ASGIApp, *, max_bytes: int, limit_text: str) -> None:
        self.app, self.max_bytes, self.limit_text = app, max_bytes, limit_text

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            drained = length <= self.DRAIN_FACTOR * self.max_bytes and await self._drain(receive, length)
            await self._refuse(send, length, close=not drained)
            return
        seen = 0
        exceeded = body_done = refused = False

        async def counted() -> Message:
            nonlocal seen, exceeded, body_done
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > self.max_bytes:
                    exceeded = True
                    return {"type": "http.disconnect"}  # the app stops reading; its answer is replaced below
            return message

        async def refuse_once() -> None:
            nonlocal refused
            if not refused:
                refused = True
                drained = body_done or await self._drain(receive, self.DRAIN_FACTOR * self.max_bytes)
                await self._refuse(send, seen, close=not drained)

        async def guarded_send(message: Message) -> None:
            if exceeded:
                await refuse_once()
            else:
                await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded:
            await refuse_once()

    @staticmethod
    async def _drain(receive: Receive, budget: int) -> bool:
        """Read and drop the rest of the body; True when it ended within ``budget`` bytes."""
        while budget >= 0:
            message = await receive()
            if message["type"] != "http.request":
                return False
            budget -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
        return False

    async def _refuse(self, send: Send, n_bytes: int, *, close: bool) -> None:
        message = (f"upload too large: {n_bytes / 2**20:.1f} MiB or more, this server accepts at most "
                   f"{self.limit_text} per request")
        response = error_response(message, "UploadTooLarge", 413, {"Connection": "close"} if close else None)
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
