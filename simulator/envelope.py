"""Shipper's response envelope, and the gateway's own 401 shape."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from http import HTTPStatus

from flask import current_app, has_app_context

from .errors import ERROR_CODES


def now() -> float:
    """The simulator's clock (virtual when frozen), else real time."""
    if has_app_context():
        simulator = current_app.extensions.get("shipper_sim")
        if simulator is not None:
            return simulator.clock.now()
    return time.time()


_PHRASES = {s.value: s.phrase for s in HTTPStatus}


def reason_phrase(status: int) -> str:
    return _PHRASES.get(status, "Unknown")


def metadata(path: str, status: int) -> dict:
    return {
        "path": path,
        "http_status_code": status,
        "http_status": reason_phrase(status),
        "timestamp": int(now()),
    }


def success(path: str, data=None, pagination: dict | None = None) -> dict:
    body: dict = {"metadata": metadata(path, 200)}
    if data is not None:
        body["data"] = data
    if pagination is not None:
        body["pagination"] = pagination
    return body


def error(path: str, code: int, status: int | None = None) -> tuple[dict, int]:
    """The envelope of one of Shipper's error codes; answers (body, status)."""
    known = ERROR_CODES[code]
    status = status or known.http_status
    md = metadata(path, status)
    # A status of its own (an injected 429 or 503) keeps the code's message,
    # as Shipper's table fixes it; metadata.http_status names the status.
    md["errors"] = [{"code": code, "message": known.message}]
    return {"metadata": md}, status


def unauthorized(method: str, path: str) -> dict:
    """The API gateway's 401, which differs from every other error body."""
    inner = path.replace("/v3/", "/v1/", 1)
    return {
        "metadata": {
            "path": path,
            "status_code": 401,
            "status": "Unauthorized",
            "message": f"{method} {inner} [401] Unauthorized",
            "error": {"code": 802, "message": ERROR_CODES[802].message},
            "timestamp": datetime.fromtimestamp(now(), UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        }
    }
