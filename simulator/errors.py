"""Shipper's error codes, as one table, and the exceptions that carry them.

Operations raise a :class:`ShipperError` (or a subclass); the HTTP layer turns
it into Shipper's envelope. ``reason`` is the simulator's own sentence for a
person: it goes to the log, the request journal and the ``x-sim-error``
header, never into the Shipper body, which stays exactly like Shipper's.
"""

from __future__ import annotations

from dataclasses import dataclass

from werkzeug.exceptions import RequestTimeout


@dataclass(frozen=True)
class ErrorCode:
    code: int
    http_status: int
    message: str
    when: str
    decided: bool = False


ERROR_CODES: dict[int, ErrorCode] = {
    e.code: e
    for e in [
        ErrorCode(
            802,
            401,
            "Unauthorized Access. You are not authorized to access this resource.",
            "bad or missing x-api-key (answered in the gateway's own shape)",
        ),
        ErrorCode(
            810,
            400,
            "Invalid Input. Please Validate Your Input.",
            "any field fails validation, or the body is not JSON of the right shape",
        ),
        ErrorCode(
            3012,
            400,
            "Order Doesn't Exist in WMS and OMS.",
            "cancel or update of an unknown order",
        ),
        ErrorCode(
            10004,
            404,
            "Record Does Not Exist. Please Validate Your Input Or Contact "
            "Administrator.",
            "detail of an unknown order, or an unknown route",
        ),
        ErrorCode(
            803,
            500,
            "Internal Server Error. Please Call Administrator.",
            "the simulator itself failed, or a fault was injected",
        ),
        ErrorCode(
            3011,
            400,
            "Order Number Already Exists.",
            "create with a number this client already used in that warehouse",
            decided=True,
        ),
        ErrorCode(
            3013,
            400,
            "SKU Does Not Exist.",
            "a line names a SKU the warehouse does not hold for this client",
            decided=True,
        ),
        ErrorCode(
            3014,
            400,
            "Warehouse Does Not Exist.",
            "the warehouse is unknown to this client",
            decided=True,
        ),
        ErrorCode(
            3015,
            400,
            "Express Code Does Not Exist.",
            "the carrier/express code is not in the express list",
            decided=True,
        ),
        ErrorCode(
            3020,
            400,
            "Sales Order Has Been Allocated. Cancel Is Not Allowed.",
            "cancel after any stock was allocated",
            decided=True,
        ),
        ErrorCode(
            3021,
            400,
            "Sales Order Has Been Allocated. Update Is Not Allowed.",
            "update after any stock was allocated",
            decided=True,
        ),
        ErrorCode(
            3022,
            400,
            "Sales Order Has Been Cancelled.",
            "cancel or update of a cancelled order",
            decided=True,
        ),
    ]
}


class ShipperError(Exception):
    """A failure the client sees as one of Shipper's error codes."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason

    @property
    def error(self) -> ErrorCode:
        return ERROR_CODES[self.code]


class InvalidInput(ShipperError):
    """A request field failed validation: Shipper's 810.

    ``reason`` names the field, the value and what would be accepted, e.g.
    ``details[0].qty_ordered: must be a whole number above 0, got -1``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(810, reason)


class ControlError(Exception):
    """A refused control-API call (``/_sim``): plain JSON, not Shipper's shape."""

    def __init__(self, message: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


def body_timed_out(seconds: float) -> RequestTimeout:
    """The 408 for a body that stopped coming (answered with code 810)."""
    return RequestTimeout(
        f"body: incomplete; nothing more came for {seconds:g} s "
        "(is Content-Length larger than the body sent?)"
    )
