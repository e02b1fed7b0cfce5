"""One error vocabulary, translated to `error` frames and JSON error bodies at the edges, and
the WebSocket close codes that end a socket."""

from __future__ import annotations

from typing import Any


class LinkupError(Exception):
    """A refusal the client is told about; `code` is stable, `detail` is for people."""

    code = "server_error"  # REST error code
    frame_code = "server_error"  # WebSocket error code
    status = 500
    default_detail = "Internal error."

    def __init__(
        self,
        detail: str | None = None,
        *,
        ref: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.ref = ref
        self.retry_after_s = retry_after_s
        super().__init__(self.detail)

    def as_frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "type": "error",
            "code": self.frame_code,
            "detail": self.detail,
            "ref": self.ref,
        }
        if self.retry_after_s is not None:
            frame["retry_after_s"] = self.retry_after_s
        return frame

    def as_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "detail": self.detail}}


class InvalidInput(LinkupError):
    code = "invalid_request"
    frame_code = "invalid_frame"
    status = 400
    default_detail = "Invalid request."


class UnknownType(InvalidInput):
    frame_code = "unknown_type"
    default_detail = "Unknown frame type."


class Unauthorized(LinkupError):
    code = frame_code = "unauthorized"
    status = 401
    default_detail = "Authentication required."


class Forbidden(LinkupError):
    code = frame_code = "forbidden"
    status = 403
    default_detail = "Not allowed."


class NotFound(LinkupError):
    code = frame_code = "not_found"
    status = 404
    default_detail = "Not found."


class Conflict(LinkupError):
    code = frame_code = "conflict"
    status = 409
    default_detail = "Conflict."


class TooLarge(LinkupError):
    code = frame_code = "too_large"
    status = 413
    default_detail = "Too large."


class RangeNotSatisfiable(LinkupError):
    code = frame_code = "range_not_satisfiable"
    status = 416
    default_detail = "The range asked for starts past the end of the file."


class LengthRequired(LinkupError):
    code = frame_code = "length_required"
    status = 411
    default_detail = "An upload must say its Content-Length."


class RateLimited(LinkupError):
    code = frame_code = "rate_limited"
    status = 429
    default_detail = "Slow down."


class Unavailable(LinkupError):
    code = frame_code = "unavailable"
    status = 503
    default_detail = "Storage is unavailable; retry the same request later."


class ServerError(LinkupError):
    pass


#: Errors that count towards a socket's abuse limit.
ABUSIVE = (InvalidInput, TooLarge)

#: REST status → (code, default detail), for responses produced outside our handlers.
STATUS_CODES: dict[int, tuple[str, str]] = {
    400: ("invalid_request", "Invalid request."),
    401: ("unauthorized", "Authentication required."),
    403: ("forbidden", "Not allowed."),
    404: ("not_found", "Not found."),
    405: ("invalid_request", "Method not allowed."),
    409: ("conflict", "Conflict."),
    413: ("too_large", "Too large."),
    429: ("rate_limited", "Slow down."),
    503: ("unavailable", "Service unavailable."),
}


def body_for_status(status: int, detail: str | None = None) -> dict[str, Any]:
    """Return the contract's error body for an HTTP status."""
    code, default = STATUS_CODES.get(status, ("server_error", "Internal error."))
    return {"error": {"code": code, "detail": detail or default}}


# -- WebSocket close codes (docs/protocol.md) ------------------------------------------------
# Sent before accept, a close becomes an HTTP 403 refusal of the handshake.

ABUSE = 1008  # too many bad frames in ABUSE_WINDOW_S (policy violation)
SETUP_FAILED = 1011  # the server could not set the socket up (internal error)
SLOW_CONSUMER = 1013  # a frame waited SLOW_CONSUMER_TIMEOUT_S to be written ("try again later")
UNAUTHORIZED = 4401  # no valid credentials, or the token in use was revoked
BAD_ORIGIN = 4403  # a cookie handshake from a page that is not ours
IDLE = 4408  # nothing heard for IDLE_TIMEOUT_S
TOO_MANY_CONNECTIONS = 4429  # MAX_CONNECTIONS_PER_USER sockets of this kind already open
