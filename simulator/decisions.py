"""Where the simulator differs from, or guesses at, the real Shipper API.

Shipper's public pages are silent or contradict each other on some points;
each choice the simulator made is one row here. ``docs/differences.md`` is
generated from this table (``python -m simulator.decisions``) and a test
fails when the two drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    topic: str
    choice: str
    why: str = ""


DECISIONS: tuple[Decision, ...] = (
    # -- the contract's own [decided] points
    Decision(
        "Update after allocation",
        "Refused like cancel: allowed only while nothing is allocated "
        "(REGISTERED or CREATED); afterwards 400/3021.",
        "Shipper states the rule for cancel only.",
    ),
    Decision(
        "Error codes 3011, 3013, 3014, 3015, 3020, 3021, 3022",
        "Duplicate order number, unknown SKU, unknown warehouse, unknown "
        "express code, cancel/update after allocation, and an already "
        "cancelled order. Codes and messages are the simulator's own.",
        "Shipper does not publish them.",
    ),
    Decision(
        "Unknown routes",
        "404 with code 10004 in Shipper's envelope; a wrong method on a known "
        "path (OPTIONS included) is treated the same. Without a valid key the "
        "gateway's 401 comes first.",
    ),
    Decision(
        "Why an 810 failed",
        "Shipper's 810 body names no field, and neither does the simulator's. "
        "The reason (field, value, what is accepted) goes to the x-sim-error "
        "response header, the request journal (GET /_sim/requests), the log "
        "and the dashboard.",
    ),
    Decision(
        "Times without an offset",
        "Read and written as Asia/Jakarta time (UTC+7): B2C order_time and "
        "payment_time, list order_time, webhook status_time and pgi_date, "
        "list date filters.",
    ),
    Decision(
        "Order number characters",
        "so_number and doc_no accept letters, digits, '-' and '_' only.",
        "Shipper says 'no special characters'.",
    ),
    Decision(
        "customer_id",
        "Must be the calling client's own code: its OMS shop code for B2C, its "
        "WMS owner code for B2B. Another value is 400/810.",
    ),
    Decision(
        "Strict types",
        "A number where a string is expected, or the reverse, is 400/810; "
        "booleans are not numbers; null is refused everywhere except "
        "receipt_date. Exceptions: consignee_zip accepts a 5-digit string.",
    ),
    Decision(
        "B2C body wrapper",
        'A B2C create or update may be flat or wrapped as {"data": '
        '{"outbound": {...}}}. Cancel must be wrapped in {"data": '
        '{"cancellation": {...}}}; a flat cancel is 400/810.',
    ),
    Decision(
        "B2C express_code",
        "Required, and must be in the express list with type OMS.",
    ),
    Decision(
        "B2C line items",
        "Each line is sku (string, at most 50), qty_ordered (whole number "
        "above 0) and optional price. Lines are numbered 1..n in order.",
        "Shipper does not publish the B2C line field names.",
    ),
    Decision(
        "Create is asynchronous",
        "Create answers 200 with data.group_key "
        "(hwoutboundoms|hwoutboundwms.YYYY.MM.DDhhmmss.<client_id>, in UTC as "
        "Shipper's sample shows); the stored order comes by the SO created "
        "webhook. Validation "
        "and business errors are answered at once and nothing is stored.",
    ),
    Decision(
        "B2B order_type SO",
        "Accepted and stored as CSO (older pages use SO).",
    ),
    Decision(
        "List limit and order",
        "limit is at most 100; lists are newest first.",
    ),
    Decision(
        "List filters",
        "A warehouse_id with none of the client's orders (another client's, "
        "or one that does not exist) gives an empty page, as any filter that "
        "matches nothing; the stock look-up, which names a warehouse to "
        "read, refuses one that is not the client's (3014). A query "
        "parameter given twice counts with its first value.",
        "Shipper documents the filters only; a filter's value is no claim "
        "that the warehouse is the client's.",
    ),
    Decision(
        "release_status",
        "A boolean in the list as in the detail (the list page calls it a "
        "string). True once the order is in the WMS.",
    ),
    Decision(
        "Stock look-up",
        "data.stock[] of {sku, sku_descr, warehouse_id, qty}. WMS is what is "
        "physically in the warehouse (drops at shipment); OMS is what can "
        "still be sold: physical stock minus what open orders may still ship; "
        "OMSWMS the smaller of the two. A warehouse the client does not have "
        "is 400/3014.",
    ),
    Decision(
        "SHIPPED",
        "The API status of WMS codes 70 and 80, reached at goods issue; the "
        "PGI webhook is sent then.",
    ),
    Decision(
        "Partial and short steps",
        "A step takes its partial code (30, 50, 62, 65, 70) when some line "
        "holds less than was ordered, its full code otherwise. A step may run "
        "again, topping lines up, until the next step starts; after that a "
        "shortfall is for good. Ship and release run once. A step that would "
        "move nothing on any line is refused (an order with no stock at all "
        "stays CREATED, so it can still be cancelled).",
    ),
    Decision(
        "Webhook headers",
        "Content-Type: application/json and x-api-key: <the client's key>, "
        "plus x-sim-delivery-id and x-sim-event, which Shipper does not send.",
    ),
    Decision(
        "Webhook success",
        "200, 201 or 202 for SO created and status webhooks; any 2xx for PGI. "
        "Anything else, a refused connection or a timeout is retried at most "
        "3 times (4 attempts), after configurable delays (default 1, 2, 4 s).",
        "Shipper's pages say both; intervals are Shipper's secret.",
    ),
    Decision(
        "PGI for B2B orders",
        "doc_no and so_reference_a both carry the client's doc_no.",
    ),
    Decision(
        "Control API",
        "Under /_sim, JSON, no API key; the server binds to 127.0.0.1 unless "
        "told otherwise.",
    ),
    # -- the simulator's own choices where the contract is silent too
    Decision(
        "Status webhooks on create and release",
        "A B2B create sends SO created and then a status webhook for 00 (the "
        "order is in the WMS at once). A B2C create sends SO created; its 00 "
        "comes at release.",
    ),
    Decision(
        "Cancel and update per kind",
        "The OMS paths find B2C orders and the WMS paths B2B orders; naming "
        "an order of the other kind is 400/3012.",
    ),
    Decision(
        "Detail of a B2C order in the WMS",
        "Found by its so_number once released (404/10004 before); order_no is "
        "the so_number, so_reference_1 the FO number, so_reference_2 the "
        "so_number.",
    ),
    Decision(
        "OMS detail shape",
        "One sub-order per order (has_split false), carrying so_status, "
        "status_code, status_name, the WMS doc_no and per-line quantities. "
        "total_amount is order_price when given, else the lines' sum plus "
        "postage minus discount.",
    ),
    Decision(
        "AWB",
        "Made up at packing (or at shipment if packing gave none) in the "
        "carrier's form (prefix and digits from fixtures/carriers.json), "
        "unless the B2B order came with delivery_no. Detail shows '*' until "
        "then; status webhooks carry it as express_no.",
    ),
    Decision(
        "Line status and receipt_date",
        "line_status is the line's own WMS code after each step ('' before "
        "the first). receipt_date is null until shipment, then the stock's "
        "receipt date.",
    ),
    Decision(
        "PGI lines",
        "Every line of the order is listed, with qty_shipped 0 for lines "
        "that shipped nothing, so a client can reconcile each line.",
    ),
    Decision(
        "Platform",
        "Matched case-insensitively and stored upper-case.",
    ),
    Decision(
        "Limits",
        "qty_ordered at most 1,000,000,000; at most 500 lines an order; money "
        "fields 0 to 10^15; bodies over 1 MB are refused (413, code 810) "
        "before they are read.",
    ),
    Decision(
        "Slow or refused requests",
        "A body shorter than its Content-Length is given up after 30 seconds "
        "without a byte (408, code 810); a request line or headers that stop "
        "coming, after the same 30 seconds, by closing the connection. "
        "Requests the server refuses before reading them (a "
        "header over the size limit, a request line over 64 KB) get the "
        "envelope with code 810 and the HTTP status that says why (431, 414). "
        "A request line without an HTTP version is refused (400), not served "
        "as HTTP/0.9. Under serve --workers gunicorn's stricter parsing and "
        "limits apply (a request line over 4,094 bytes, a header over 8,190), "
        "answered in JSON but not in the envelope, and a body that stops "
        "coming is 400 rather than 408 (see docs/production.md). A chunked "
        "body that breaks off is 400, code 810.",
    ),
    Decision(
        "How a body is read",
        "As JSON whatever its Content-Type (or none), in UTF-8 with or "
        "without a byte-order mark, UTF-16 or UTF-32, as Python's JSON reader "
        "detects them. A key given twice keeps its last value; a control "
        "character escaped inside a string (\\u0000) is kept as sent. NaN, "
        "Infinity and lone UTF-16 surrogates are refused (810).",
        "Shipper documents Content-Type: application/json and nothing about "
        "other bodies; refusing them would break clients that work against "
        "the real API only by accident of its gateway.",
    ),
    Decision(
        "Unknown fields",
        "Ignored, as a lenient gateway would.",
    ),
)


def as_markdown() -> str:
    lines = [
        "# Differences from the real Shipper API",
        "",
        "Shipper's public documentation is silent or contradictory on some",
        "points. Where it is, the simulator made a choice; each is listed here so",
        "you know what is real and what is the simulator's guess. This page is",
        "generated from `simulator/decisions.py` (`python -m simulator.decisions`).",
        "",
    ]
    for d in DECISIONS:
        lines.append(f"## {d.topic}")
        lines.append("")
        lines.append(d.choice + (f" *{d.why}*" if d.why else ""))
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(as_markdown(), end="")
