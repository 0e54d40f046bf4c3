"""Validation of every request body and query string, one schema per table.

Each schema below mirrors a field table of the contract (SPEC sections 3 and
6), row by row. Types are strict [decided]: a number where a string belongs is
refused, ``true`` is not an int and ``null`` is never a value. Optional fields
are filled with their empty value (``""`` or ``0``), so a loaded order always
has every field of its table.

Two calls are the public way in: :func:`load_body` and :func:`load_query`.
Both raise :class:`~simulator.errors.InvalidInput` (Shipper's 810) whose
``reason`` names each bad field by its path, shows the value and says what
would be accepted, e.g. ``details[0].qty_ordered: must be a whole number above
0, got -1``. Unknown fields are ignored, never refused.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    missing,
    post_load,
    pre_load,
    validate,
    validates,
    validates_schema,
)
from marshmallow.error_store import SCHEMA

from .errors import InvalidInput
from .statuses import API_STATUSES, STEP_NAMES

__all__ = [
    "AdvanceSchema",
    "B2BCreateSchema",
    "B2CCreateSchema",
    "CancelSchema",
    "ClientSchema",
    "ExpressQuerySchema",
    "ListQuerySchema",
    "StockQuerySchema",
    "StockSetSchema",
    "StockWarehouseQuerySchema",
    "load_body",
    "load_query",
]

# -- The values Shipper names -------------------------------------------------

PLATFORMS = (
    "LAZADA",
    "SHOPEE",
    "TOKOPEDIA",
    "TIKTOK",
    "BLIBLI",
    "AKULAKU",
    "BUKALAPAK",
    "SHOPIFY",
    "ERP",
)
B2C_ORDER_TYPES = ("SO", "TT")
B2B_ORDER_TYPES = ("CSO", "RT", "TT", "CD")
# [decided] Older pages call a normal B2B order "SO"; it is stored as "CSO".
B2B_ORDER_TYPE_ALIASES = {"SO": "CSO"}
LIST_ORDER_TYPES = ("SO", "RT", "TT")
EXPRESS_TYPES = ("OMS", "WMS")
STOCK_TYPES = ("OMS", "WMS", "OMSWMS")
PROGRESSIONS = ("manual", "auto")
# Older B2C pages' field names, and the newer names they are stored under.
OLDER_NAMES = {"consignee_mobile": "mobile", "zip_code": "zipcode"}

# -- Bounds: [decided] where Shipper is silent; all fit SQLite's int64 --------

MAX_LINES = 500
MAX_QTY = 1_000_000_000
MAX_LINE_NO = 1_000_000
MAX_MONEY = 10**15
MAX_PAGE = 1_000_000_000
MAX_LIMIT = 100
DEFAULT_LIMIT = 10
MAX_SKUS = 20
MAX_CLIENT_ID = 2**31 - 1
MAX_STEP_DELAY = 3600

# How much of a bad value a reason shows, and how many failures it lists.
SHOWN_VALUE_CHARS = 60
SHOWN_FAILURES = 20

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUERY_INT = re.compile(r"-?[0-9]+")
_ZIP = re.compile(r"[0-9]{5}")
_API_KEY = re.compile(r"[\x21-\x7e]+")

# Shipper's layouts, spelled as its pages spell them.
DATE = "yyyy-MM-dd"
LOCAL_TIME = "yyyy-MM-dd HH:mm:ss"
UTC_TIME = "yyyy-MM-ddTHH:mm:ssZ"
# Each run of a layout's letters is that many digits of one datetime field.
_LAYOUT_PART = re.compile(r"yyyy|MM|dd|HH|mm|ss")
_DATETIME_FIELD = {
    "yyyy": "year",
    "MM": "month",
    "dd": "day",
    "HH": "hour",
    "mm": "minute",
    "ss": "second",
}


def _layout_pattern(layout: str) -> re.Pattern:
    """A regex that takes exactly the layout, one named group per field."""
    pattern, end = "", 0
    for part in _LAYOUT_PART.finditer(layout):
        pattern += re.escape(layout[end : part.start()])
        pattern += f"(?P<{_DATETIME_FIELD[part[0]]}>[0-9]{{{len(part[0])}}})"
        end = part.end()
    return re.compile(pattern + re.escape(layout[end:]))


# -- Wording of a refusal -----------------------------------------------------


def _show(value: object) -> str:
    """The value as the reason shows it: its repr, cut to a readable length."""
    try:
        return _cut(repr(value))
    except ValueError:
        # Python refuses to print an int of thousands of digits.
        return "<a number too long to show>"


def _cut(text: str) -> str:
    if len(text) > SHOWN_VALUE_CHARS:
        return text[: SHOWN_VALUE_CHARS - 3] + "..."
    return text


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _refuse(expected: str, value: object) -> ValidationError:
    return ValidationError(f"{expected}, got {_show(value)}")


def _listing(choices: tuple[object, ...]) -> str:
    if len(choices) == 1:
        return _show(choices[0])
    return "one of " + ", ".join(_show(c) for c in choices)


# -- Fields -------------------------------------------------------------------


class _Lean:
    """Put before a marshmallow field: marshmallow's steps, fewer calls.

    Every field of every order goes through these, so the general case's
    calls add up: a value that is given (not absent, not null) is loaded and
    validated at once, and marshmallow's chain of validators is built only
    for a field that has any.
    """

    def deserialize(self, value: Any, attr: Any = None, data: Any = None, **kw: Any):
        if value is missing or value is None or self.pre_load or self.post_load:
            return super().deserialize(value, attr, data, **kw)
        output = self._deserialize(value, attr, data, **kw)
        self._validate(output)
        return output

    def _validate(self, value: Any) -> None:
        if self.validators:
            super()._validate(value)


class StrictString(_Lean, fields.Field[str]):
    """A JSON string of at most ``max_length`` characters.

    Required means present and not blank. Optional strings default to ``""``.
    """

    default_error_messages = {
        "required": "is required",
        "null": "must be a string, got None",
    }

    def __init__(
        self, max_length: int | None = None, *, required: bool = False, **kwargs: Any
    ) -> None:
        if not required:
            kwargs.setdefault("load_default", "")
        super().__init__(required=required, **kwargs)
        self.max_length = max_length

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise _refuse("must be a string", value)

        if self.required and not value.strip():
            raise _refuse("must not be empty", value)

        if self.max_length is not None and len(value) > self.max_length:
            raise ValidationError(
                f"must be at most {self.max_length} characters, "
                f"got {len(value)}: {_show(value)}"
            )
        return value


class Choice(StrictString):
    """A string from a fixed list; an empty optional one takes ``default``."""

    def __init__(
        self,
        choices: tuple[str, ...],
        *,
        required: bool = False,
        default: str = "",
        ignore_case: bool = False,
        aliases: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        if not required:
            kwargs["load_default"] = default
        super().__init__(required=required, **kwargs)
        self.default = default
        self.ignore_case = ignore_case

        # Every accepted spelling, folded if case does not matter, mapped to
        # the value the rest of the simulator sees.
        canonical = {c: c for c in choices} | dict(aliases or {})
        self.accepted = {self._fold(k): v for k, v in canonical.items()}

        self.expected = "must be " + _listing(choices)
        if aliases:
            self.expected += (
                " (or "
                + ", ".join(f"{k!r} for {v!r}" for k, v in aliases.items())
                + ")"
            )
        if ignore_case:
            self.expected += ", in any case"

    def _fold(self, text: str) -> str:
        return text.upper() if self.ignore_case else text

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise _refuse(self.expected, value)

        if value == "" and not self.required:
            return self.default

        try:
            return self.accepted[self._fold(value)]
        except KeyError:
            raise _refuse(self.expected, value) from None


class StrictInteger(_Lean, fields.Field[int]):
    """A JSON whole number within bounds (or from ``choices``); never a bool."""

    default_error_messages = {
        "required": "is required",
        "null": "must be a whole number, got None",
    }

    def __init__(
        self,
        minimum: int | None = None,
        maximum: int | None = None,
        *,
        choices: tuple[int, ...] | None = None,
        required: bool = False,
        default: int = 0,
        **kwargs: Any,
    ) -> None:
        if not required:
            kwargs.setdefault("load_default", default)
        super().__init__(required=required, **kwargs)
        self.minimum = minimum
        self.maximum = maximum
        self.choices = choices

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        number = self._whole_number(value)

        if self.choices is not None and number not in self.choices:
            raise _refuse("must be " + _listing(self.choices), value)
        if self.minimum is not None and number < self.minimum:
            raise _refuse(self._below_minimum(), value)
        if self.maximum is not None and number > self.maximum:
            raise _refuse(
                f"must be a whole number from {self.minimum} to {self.maximum}", value
            )
        return number

    def _whole_number(self, value: Any) -> int:
        # bool is a subclass of int in Python, but true is not 1 in JSON.
        if isinstance(value, bool) or not isinstance(value, int):
            raise _refuse(self._expected(), value)
        return value

    def _expected(self) -> str:
        if self.choices is not None:
            return "must be " + _listing(self.choices)
        return "must be a whole number"

    def _below_minimum(self) -> str:
        if self.minimum == 1:
            return "must be a whole number above 0"
        return f"must be a whole number of {self.minimum} or more"


class QueryInteger(StrictInteger):
    """A whole number in a query string, where every value arrives as text."""

    def _whole_number(self, value: Any) -> int:
        if isinstance(value, str) and _QUERY_INT.fullmatch(value):
            try:
                return int(value)
            except ValueError:
                # Too many digits for Python to convert: out of range anyway.
                raise _refuse(
                    f"must be a whole number from {self.minimum} to {self.maximum}",
                    value,
                ) from None
        return super()._whole_number(value)


class StrictNumber(_Lean, fields.Field[float]):
    """A finite JSON number (int or float, not bool, not text) within bounds."""

    default_error_messages = {
        "required": "is required",
        "null": "must be a number, got None",
    }

    def __init__(
        self,
        minimum: int = 0,
        maximum: int = MAX_MONEY,
        *,
        required: bool = False,
        **kwargs: Any,
    ) -> None:
        if not required:
            kwargs.setdefault("load_default", 0)
        super().__init__(required=required, **kwargs)
        self.minimum = minimum
        self.maximum = maximum

    def _deserialize(
        self, value: Any, attr: Any, data: Any, **kwargs: Any
    ) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _refuse("must be a number", value)

        # Python's json module reads NaN and Infinity; JSON has neither.
        if isinstance(value, float) and not math.isfinite(value):
            raise _refuse("must be a finite number", value)

        if value < self.minimum:
            raise _refuse(f"must be a number of {self.minimum} or more", value)
        if value > self.maximum:
            raise _refuse(
                f"must be a number from {self.minimum} to {self.maximum}", value
            )
        return value


class TimeText(StrictString):
    """A date or time as text in one of Shipper's layouts, and a real one.

    The loaded value stays the text the client sent; optional ones may be "".
    """

    def __init__(self, layout: str, *, required: bool = False, **kwargs: Any) -> None:
        super().__init__(required=required, **kwargs)
        self.layout = layout
        # Every letter of the layout is one digit; the rest is literal. (The
        # OpenAPI document shows this pattern.)
        self.shape = re.compile(re.sub(r"[yMdHms]", "[0-9]", layout))
        self._fields = _layout_pattern(layout)

        what = "a date" if layout == DATE else "a time"
        self.expected = f"must be {what} as {layout}"
        if not required:
            self.expected = f'must be "" or {what} as {layout}'

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise _refuse(self.expected, value)

        if value == "" and not self.required:
            return value

        self._parse(value)
        return value

    def _parse(self, value: str) -> datetime:
        # Exactly the layout's digits ("2022-7-5" is refused), then a real date.
        found = self._fields.fullmatch(value)
        if not found:
            raise _refuse(self.expected, value)

        try:
            return datetime(**{k: int(v) for k, v in found.groupdict().items()})
        except ValueError:
            raise _refuse(self.expected + " (a real one)", value) from None


class QueryDate(TimeText):
    """A ``yyyy-MM-dd`` query parameter, loaded as a date (None if not given)."""

    default_error_messages = {"null": "must be a date as yyyy-MM-dd, got None"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(DATE, load_default=None, **kwargs)
        self.expected = "must be a date as yyyy-MM-dd"

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> date:
        if not isinstance(value, str):
            raise _refuse(self.expected, value)
        return self._parse(value).date()


class ZipCode(_Lean, fields.Field[str]):
    """Five digits, as a number (12345) or [decided] a string ("01234").

    Loaded as the five-character string, so a leading zero is kept.
    """

    default_error_messages = {
        "required": "is required",
        "null": "must be 5 digits, got None",
    }
    expected = "must be 5 digits, as a number (12345) or a string ('01234')"

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if isinstance(value, str) and _ZIP.fullmatch(value):
            return value
        if type(value) is int and 10_000 <= value <= 99_999:
            return str(value)
        raise _refuse(self.expected, value)


class StrictList(_Lean, fields.List):
    """A JSON array of ``inner`` values, with a bound on how many it holds."""

    default_error_messages = {
        "required": "is required",
        "null": "must be a list, got None",
    }

    def __init__(
        self,
        inner: fields.Field,
        *,
        min_items: int = 0,
        max_items: int | None = None,
        noun: str = "items",
        required: bool = False,
        **kwargs: Any,
    ) -> None:
        if not required:
            kwargs.setdefault("load_default", list)
        super().__init__(inner, required=required, **kwargs)
        self.min_items = min_items
        self.max_items = max_items
        self.noun = noun

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list:
        _check_count(value, self.min_items, self.max_items, self.noun)
        return super()._deserialize(value, attr, data, **kwargs)


class Lines(_Lean, fields.Nested):
    """The ``details`` array of an order: 1 to ``MAX_LINES`` line objects.

    Each line is loaded on its own, so that every bad line is reported with
    its index, and a list too long is refused before any line is read.
    """

    default_error_messages = {
        "required": "is required",
        "null": "must be a list of lines, got None",
    }

    def __init__(self, line_schema: type[Schema], **kwargs: Any) -> None:
        super().__init__(line_schema, required=True, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list:
        _check_count(value, 1, MAX_LINES, "lines")

        lines, errors = [], {}
        for index, line in enumerate(value):
            try:
                lines.append(self.schema.load(line))
            except ValidationError as error:
                errors[index] = error.messages

        if errors:
            raise ValidationError(errors)
        return lines


class Object(_Lean, fields.Nested):
    """A nested JSON object that must be given."""

    default_error_messages = {
        "required": "is required",
        "null": "expected a JSON object, got None",
    }

    def __init__(self, schema: type[Schema], **kwargs: Any) -> None:
        super().__init__(schema, required=True, **kwargs)


class LineQuantities(_Lean, fields.Field[dict]):
    """``{"<sku or line number>": <quantity>}`` for a short warehouse step."""

    default_error_messages = {
        "required": "is required",
        "null": "must be an object of line quantities, got None",
    }
    expected = 'must be an object like {"SKU-A": 3}'

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(load_default=dict, **kwargs)
        self.line = StrictString(50, required=True)
        self.quantity = StrictInteger(0, MAX_QTY, required=True)

    def _deserialize(
        self, value: Any, attr: Any, data: Any, **kwargs: Any
    ) -> dict[str, int]:
        if not isinstance(value, Mapping):
            raise _refuse(self.expected, value)

        quantities, errors = {}, {}
        for key, qty in value.items():
            try:
                quantities[self.line.deserialize(key)] = self.quantity.deserialize(qty)
            except ValidationError as error:
                errors[key] = error.messages

        if errors:
            raise ValidationError(errors)
        return quantities


def _check_count(value: object, minimum: int, maximum: int | None, noun: str) -> None:
    if not isinstance(value, list):
        raise _refuse(f"must be a list of {noun}", value)

    if len(value) < minimum:
        if minimum == 1:
            raise _refuse("must not be empty", value)
        raise ValidationError(f"must hold at least {minimum} {noun}, got {len(value)}")
    if maximum is not None and len(value) > maximum:
        raise ValidationError(f"must hold at most {maximum} {noun}, got {len(value)}")


# -- Validators for string rules ----------------------------------------------


def _check_order_number(value: str) -> None:
    """[decided] "No special characters": letters, digits, '-' and '_'."""
    if not _PLAIN_NAME.fullmatch(value):
        raise _refuse("only letters, digits, '-' and '_' are allowed", value)


def _check_email(value: str) -> None:
    try:
        validate.Email()(value)
    except ValidationError:
        raise _refuse(
            "must be an e-mail address like name@example.com", value
        ) from None


def _check_webhook_url(value: str) -> None:
    expected = 'must be "" or an http(s) URL like "http://127.0.0.1:9000/hook"'
    if value == "":
        return

    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise _refuse(expected, value) from None

    if parts.scheme not in ("http", "https") or not host or re.search(r"\s", value):
        raise _refuse(expected, value)


def _check_api_key(value: str) -> None:
    # HTTP strips spaces around a header value, so such a key could never match.
    if not _API_KEY.fullmatch(value):
        raise _refuse("must be printable ASCII without spaces", value)


def _check_status_target(value: str) -> None:
    if value and not re.fullmatch(r"[0-9]{2}|[A-Za-z]+", value):
        raise _refuse(
            "must be an API status (e.g. 'SHIPPED') or a 2-digit WMS code (e.g. '66')",
            value,
        )


# -- Schemas ------------------------------------------------------------------


class _Body(Schema):
    """A JSON object whose unknown fields are ignored."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _require_object(self, data: Any, **kwargs: Any) -> dict:
        if not isinstance(data, Mapping):
            raise ValidationError(f"expected a JSON object, got {_kind(data)}")
        return self.prepare(dict(data))

    def prepare(self, data: dict) -> dict:
        """Reshape the raw object before its fields are read; by default, none."""
        return data

    def _deserialize(self, data: Any, *, error_store: Any, **options: Any) -> Any:
        """marshmallow's loop over the fields, without what these bodies never use.

        marshmallow wraps every field in a closure and two more calls for the
        options of its general case (a collection, partial loading, renamed
        or dotted fields, unknown fields kept or refused). For one object of
        plain fields the same steps are done here directly: each field loads
        its value, or its default when absent, and its errors are stored
        under its name. Anything else is left to marshmallow.
        """
        fields = self._plain_fields
        if fields is None or not isinstance(data, Mapping) or _general(options):
            return super()._deserialize(data, error_store=error_store, **options)

        index = options.get("index") if self.opts.index_errors else None
        loaded = {}
        for name, field in fields:
            try:
                value = field.deserialize(data.get(name, missing), name, data)
            except ValidationError as error:
                error_store.store_error(error.messages, name, index=index)
                value = error.valid_data or missing
            if value is not missing:
                loaded[name] = value
        return loaded

    @functools.cached_property
    def _plain_fields(self) -> list[tuple[str, fields.Field]] | None:
        """(name, field) to load, if all are plain: read and stored by name."""
        pairs = list(self.load_fields.items())
        plain = all(
            f.data_key is None and f.attribute is None and "." not in name
            for name, f in pairs
        )
        return pairs if plain else None


def _general(options: dict) -> bool:
    """Whether marshmallow's general case is asked for."""
    return (
        options.get("many", False)
        or options.get("partial") is not None
        or options.get("unknown", RAISE) != EXCLUDE
    )


class B2CLineSchema(_Body):
    # [decided] Shipper does not publish the B2C line fields.
    sku = StrictString(50, required=True)
    qty_ordered = StrictInteger(1, MAX_QTY, required=True)
    price = StrictNumber()


class B2CCreateSchema(_Body):
    """SPEC 3.1, Create (and Update) Sales Order B2C."""

    warehouse_id = StrictString(20, required=True)
    customer_id = StrictString(20, required=True)
    so_number = StrictString(50, required=True, validate=_check_order_number)
    order_type = Choice(B2C_ORDER_TYPES, default="SO")
    order_source = StrictString(32)
    platform = Choice(PLATFORMS, ignore_case=True)
    order_identification_code = StrictInteger(choices=(1,), required=True)
    internal_order_status = StrictString(30, required=True)
    express_code = StrictString(40, required=True)
    tenant_name = StrictString(200, required=True)
    consignee = StrictString(200, required=True)
    consignee_phone = StrictString(300, required=True)
    consignee_mobile = StrictString(300)
    consignee_email = StrictString(200, required=True)
    consignee_full_address = StrictString(200, required=True)
    consignee_state = StrictString(30, required=True)
    consignee_province = StrictString(50, required=True)
    consignee_city = StrictString(50, required=True)
    area = StrictString()
    town = StrictString()
    # Required, under this name or the older one: see _older_names_agree.
    zip_code = StrictString(20)
    consignee_doc_type = StrictInteger(choices=(0, 1, 2, 3))
    consignee_doc_no = StrictString()
    seller_nick = StrictString()
    seller_flag = StrictString()
    buyer_remark = StrictString()
    seller_remark = StrictString()
    order_price = StrictNumber()
    pre_tax_price = StrictNumber()
    tax_price = StrictNumber()
    discount_price = StrictNumber()
    postage = StrictNumber()
    cod_price = StrictNumber()
    order_time = TimeText(LOCAL_TIME)
    payment_time = TimeText(LOCAL_TIME)
    payment_type = StrictInteger(choices=(0, 1))
    payment_way = StrictString()
    details = Lines(B2CLineSchema)

    # Older pages' names; folded into the newer ones after loading.
    mobile = StrictString(300)
    zipcode = StrictString(20)

    def prepare(self, data: dict) -> dict:
        # [decided] Accept {"data": {"outbound": {...}}} as well as a flat body.
        wrapper = data.get("data")
        if not (isinstance(wrapper, Mapping) and "outbound" in wrapper):
            return data

        outbound = wrapper["outbound"]
        if not isinstance(outbound, Mapping):
            message = f"expected a JSON object, got {_kind(outbound)}"
            raise ValidationError({"data": {"outbound": [message]}})
        return dict(outbound)

    # Runs even when other fields failed, so that a missing zip code is
    # reported together with them.
    @validates_schema(skip_on_field_errors=False)
    def _older_names_agree(self, data: dict, **kwargs: Any) -> None:
        errors = {}
        for new, old in OLDER_NAMES.items():
            # A field that failed its own check is absent from data.
            if new not in data or old not in data:
                continue

            if data[new].strip() and data[old].strip() and data[new] != data[old]:
                errors[old] = [
                    f"is the older name of {new}, which holds {_show(data[new])}; "
                    f"send only one, got {_show(data[old])}"
                ]
            elif new == "zip_code" and not (data[new].strip() or data[old].strip()):
                errors[new] = [f"is required (or its older name {old})"]

        if errors:
            raise ValidationError(errors)

    @post_load
    def _use_newer_names(self, data: dict, **kwargs: Any) -> dict:
        for new, old in OLDER_NAMES.items():
            older_value = data.pop(old)
            if not data[new].strip():
                data[new] = older_value

        for number, line in enumerate(data["details"], start=1):
            line["line_no"] = number
        return data


class B2BLineSchema(_Body):
    line_no = StrictInteger(1, MAX_LINE_NO, required=True)
    sku = StrictString(50, required=True)
    qty_ordered = StrictInteger(1, MAX_QTY, required=True)
    price = StrictNumber()
    mfg_date = TimeText(DATE)
    exp_date = TimeText(DATE)
    batch_no = StrictString()
    serial_no = StrictString()


class B2BCreateSchema(_Body):
    """SPEC 3.2, Create (and Update) Sales Order B2B."""

    warehouse_id = StrictString(20, required=True)
    customer_id = StrictString(50, required=True)
    order_type = Choice(B2B_ORDER_TYPES, required=True, aliases=B2B_ORDER_TYPE_ALIASES)
    doc_no = StrictString(20, required=True, validate=_check_order_number)
    order_time = TimeText(UTC_TIME, required=True)
    consignee_id = StrictString(50)
    consignee_name = StrictString(50, required=True)
    consignee_tel = StrictString(30, required=True)
    consignee_mail = StrictString(100, required=True, validate=_check_email)
    consignee_zip = ZipCode(required=True)
    consignee_address = StrictString(200, required=True)
    consignee_state = StrictString()
    consignee_province = StrictString()
    consignee_city = StrictString()
    delivery_no = StrictString(30)
    carrier_id = StrictString(30, required=True)
    carrier_name = StrictString(200)
    priority = StrictString(1)
    notes = StrictString(200)
    details = Lines(B2BLineSchema)

    @validates("details")
    def _unique_line_numbers(self, lines: list[dict], **kwargs: Any) -> None:
        first_index: dict[int, int] = {}
        errors = {}
        for index, line in enumerate(lines):
            number = line["line_no"]
            if number in first_index:
                errors[index] = {
                    "line_no": [
                        f"must be unique within the order, got {number} again "
                        f"(first at details[{first_index[number]}])"
                    ]
                }
            first_index.setdefault(number, index)

        if errors:
            raise ValidationError(errors)


class CancellationSchema(_Body):
    order_no = StrictString(required=True)
    warehouse_id = StrictString(required=True)
    cancel_reason = StrictString(50, required=True)


class CancelDataSchema(_Body):
    cancellation = Object(CancellationSchema)


class CancelSchema(_Body):
    """SPEC 3.4, Cancel Sales Order; loaded flat as the cancellation's fields."""

    data = Object(CancelDataSchema)

    def prepare(self, data: dict) -> dict:
        # Shipper's wrapper is required; a flat body is the common mistake,
        # so it gets its own sentence.
        if "data" not in data:
            keys = ", ".join(sorted(map(str, data))) or "none"
            raise ValidationError(
                'expected {"data": {"cancellation": {...}}}, '
                f"got a flat body with keys {_cut(keys)}"
            )
        return data

    @post_load
    def _unwrap(self, data: dict, **kwargs: Any) -> dict:
        return data["data"]["cancellation"]


class _PagedQuery(_Body):
    page = QueryInteger(1, MAX_PAGE, default=1)
    # [decided] At most 100 a page.
    limit = QueryInteger(1, MAX_LIMIT, default=DEFAULT_LIMIT)


class ListQuerySchema(_PagedQuery):
    """SPEC 3.5, Retrieve List Sales Order (the path's outbound_type aside)."""

    created_start = QueryDate()
    created_end = QueryDate()
    updated_start = QueryDate()
    updated_end = QueryDate()
    warehouse_id = StrictString()
    order_type = Choice(LIST_ORDER_TYPES)
    so_status = Choice(API_STATUSES)

    @validates_schema
    def _start_before_end(self, data: dict, **kwargs: Any) -> None:
        errors = {}
        for start, end in (
            ("created_start", "created_end"),
            ("updated_start", "updated_end"),
        ):
            if data[start] and data[end] and data[start] > data[end]:
                errors[start] = [
                    f"must not be after {end} ({data[end].isoformat()}), "
                    f"got {data[start].isoformat()!r}"
                ]

        if errors:
            raise ValidationError(errors)


class ExpressQuerySchema(_PagedQuery):
    """SPEC 3.8, the express (carrier) list."""

    express_code = StrictString()
    express_name = StrictString()
    express_type = Choice(EXPRESS_TYPES, ignore_case=True)


class StockQuerySchema(_PagedQuery):
    """SPEC 3.8, stock of one warehouse; ``sku`` and ``skus`` load as ``skus``."""

    warehouse_code = StrictString(required=True)
    stock_type = Choice(STOCK_TYPES, required=True)
    sku = StrictString()
    skus = StrictList(StrictString(required=True), noun="SKUs")

    @validates_schema
    def _at_most_20_skus(self, data: dict, **kwargs: Any) -> None:
        count = len(data["skus"]) + (1 if data["sku"] else 0)
        if count > MAX_SKUS:
            raise ValidationError(
                f"must hold at most {MAX_SKUS} SKUs (sku and skus together), "
                f"got {count}",
                field_name="skus",
            )

    @post_load
    def _one_list(self, data: dict, **kwargs: Any) -> dict:
        sku = data.pop("sku")
        wanted = ([sku] if sku else []) + data["skus"]
        # The same SKU asked twice is shown once.
        data["skus"] = list(dict.fromkeys(wanted))
        return data


class StockWarehouseQuerySchema(_PagedQuery):
    """SPEC 3.8, OMS stock per SKU over every warehouse; no SKUs means all."""

    skus = StrictList(StrictString(required=True), max_items=MAX_SKUS, noun="SKUs")


# -- Control API (SPEC 6) -----------------------------------------------------


class ClientSchema(_Body):
    """POST /_sim/clients: one client, its keys, codes and warehouses."""

    api_key = StrictString(200, required=True, validate=_check_api_key)
    client_id = StrictInteger(1, MAX_CLIENT_ID, required=True)
    tenant_name = StrictString(200, required=True)
    oms_customer_id = StrictString(20, required=True)
    wms_customer_id = StrictString(50, required=True)
    warehouses = StrictList(
        StrictString(20, required=True, validate=_check_order_number),
        min_items=1,
        noun="warehouse ids",
        required=True,
    )
    webhook_url = StrictString(validate=_check_webhook_url)
    progression = Choice(PROGRESSIONS, default="manual")
    step_delay = StrictNumber(0, MAX_STEP_DELAY)

    @validates("warehouses")
    def _distinct_warehouses(self, warehouses: list[str], **kwargs: Any) -> None:
        seen: set[str] = set()
        for index, warehouse_id in enumerate(warehouses):
            if warehouse_id in seen:
                raise ValidationError(
                    {index: [f"is listed twice, got {_show(warehouse_id)}"]}
                )
            seen.add(warehouse_id)

    @post_load(pass_original=True)
    def _default_step_delay(self, data: dict, original: dict, **kwargs: Any) -> dict:
        # Not sent: the simulator's configured delay applies, not zero.
        if "step_delay" not in original:
            del data["step_delay"]
        return data


class _KnownFieldsBody(_Body):
    """A control-API body whose unknown fields are refused, not ignored.

    A misspelt or unsupported key would otherwise be dropped in silence: a
    fault that matches every call, a client change that never happens.
    """

    @validates_schema(pass_original=True)
    def _known_fields(self, data: dict, original: dict, **kwargs: Any) -> None:
        for key in original:
            if key not in self.fields:
                raise ValidationError(
                    f"not a field here; expected {_listing(tuple(self.fields))}",
                    field_name=key,
                )


class ClientUpdateSchema(_KnownFieldsBody):
    """PATCH /_sim/clients/<id>: change what a client has set up.

    Loads only the fields that were sent, so the others stay as they are.
    """

    tenant_name = StrictString(200)
    webhook_url = StrictString(validate=_check_webhook_url)
    progression = Choice(PROGRESSIONS)
    step_delay = StrictNumber(0, MAX_STEP_DELAY)

    @post_load(pass_original=True)
    def _only_sent(self, data: dict, original: dict, **kwargs: Any) -> dict:
        return {k: v for k, v in data.items() if k in original}


class ProgressionSchema(_KnownFieldsBody):
    """PUT /_sim/orders/.../progression: how one order moves on."""

    mode = Choice(PROGRESSIONS, required=True)


class StrictBoolean(_Lean, fields.Field[bool]):
    """A JSON true or false; never 0, 1 or text."""

    default_error_messages = {
        "required": "is required",
        "null": "must be true or false, got None",
    }

    def __init__(self, *, required: bool = False, **kwargs: Any) -> None:
        if not required:
            kwargs.setdefault("load_default", False)
        super().__init__(required=required, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise _refuse("must be true or false", value)
        return value


class AnyObject(_Lean, fields.Field[dict]):
    """Any JSON object, taken as it is."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dict:
        if not isinstance(value, dict):
            raise _refuse("must be a JSON object", value)
        return value


FAULT_TARGETS = ("api", "webhook")
WEBHOOK_EVENTS = ("so_created", "status", "pgi")
# The operations an API fault can name: the Shipper routes' names in api.py.
FAULT_ENDPOINTS = (
    "create_sales_order",
    "update_sales_order",
    "cancel_sales_order",
    "list_sales_orders",
    "get_sales_order_detail_wms",
    "get_sales_order_detail_oms",
    "get_express_list",
    "get_stock",
    "get_stock_by_warehouse",
)


class FaultSchema(_KnownFieldsBody):
    """POST /_sim/faults: what to match, how many, and what goes wrong."""

    target = Choice(FAULT_TARGETS, default="api")
    endpoint = Choice(FAULT_ENDPOINTS, default=None)
    method = Choice(("GET", "POST", "PUT", "PATCH"), ignore_case=True, default=None)
    path = StrictString(200, load_default=None)
    client_id = StrictInteger(1, MAX_CLIENT_ID, default=None)
    event = Choice(WEBHOOK_EVENTS, default=None)
    order_no = StrictString(50, load_default=None)
    count = StrictInteger(1, 1_000_000, default=None)
    rate = StrictNumber(0, 1, load_default=None)
    seed = StrictInteger(0, 2**31 - 1)
    error_code = StrictInteger(1, 99_999, default=None)
    status = StrictInteger(400, 599, default=None)
    delay = StrictNumber(0, 60)
    drop = StrictBoolean()
    duplicate = StrictBoolean()
    late = StrictNumber(0, 3600)
    out_of_order = StrictBoolean()

    @validates_schema
    def _one_effect(self, data: dict, **kwargs: Any) -> None:
        api = [k for k in ("error_code", "status", "delay", "drop") if data[k]]
        hook = [k for k in ("duplicate", "late", "out_of_order") if data[k]]
        if data["target"] == "api" and not api:
            raise ValidationError(
                "an api fault needs error_code, status, delay or drop",
                field_name="target",
            )
        if data["target"] == "webhook" and not hook:
            raise ValidationError(
                "a webhook fault needs duplicate, late or out_of_order",
                field_name="target",
            )
        if data["target"] == "api" and hook or data["target"] == "webhook" and api:
            raise ValidationError(
                f"{', '.join(api + hook)} cannot all apply to one {data['target']} "
                "fault",
                field_name="target",
            )
        if data["error_code"] and data["status"]:
            raise ValidationError(
                "give error_code or status, not both", field_name="status"
            )

    @post_load
    def _default_count(self, data: dict, **kwargs: Any) -> dict:
        # The next call by default; with a rate, every matching call.
        if data["count"] is None and data["rate"] is None:
            data["count"] = 1
        return data


class ClockSchema(_KnownFieldsBody):
    """POST /_sim/clock/freeze and /advance."""

    at = StrictNumber(0, 32_503_680_000, load_default=None)
    seconds = StrictNumber(0, 10 * 365 * 86_400)


class VerifySchema(_Body):
    """POST /_sim/requests/verify: was an endpoint called as expected?"""

    method = Choice(("GET", "POST", "PUT", "PATCH"), ignore_case=True, default=None)
    path = StrictString(300, required=True)
    client_id = StrictInteger(1, MAX_CLIENT_ID, default=None)
    body = AnyObject(load_default=None)
    status = StrictInteger(100, 599, default=None)
    count = StrictInteger(0, 1_000_000, default=None)
    at_least = StrictInteger(0, 1_000_000, default=None)


class StockSetSchema(_Body):
    """PUT /_sim/stock: set one SKU's physical stock in one warehouse."""

    client_id = StrictInteger(1, MAX_CLIENT_ID, required=True)
    warehouse_id = StrictString(required=True)
    sku = StrictString(50, required=True)
    qty = StrictInteger(0, MAX_QTY, required=True)
    sku_descr = StrictString()


class AdvanceSchema(_Body):
    """POST /_sim/orders/.../advance: ``to`` a status, or one ``step``.

    Loads as ``{"to": ...}`` or ``{"step": ..., "lines": {...}}``. Only the
    shape is checked here; whether the move is allowed is the order model's
    question.
    """

    to = StrictString(20, validate=_check_status_target)
    step = Choice(STEP_NAMES, ignore_case=True)
    lines = LineQuantities()

    @validates_schema(pass_original=True)
    def _to_or_step(self, data: dict, original: dict, **kwargs: Any) -> None:
        if data["to"] and data["step"]:
            raise ValidationError(
                "give either 'to' or 'step', not both", field_name="step"
            )
        if not data["to"] and not data["step"]:
            raise ValidationError(
                'expected {"to": "<status>"} or {"step": "<step>", "lines": {...}}'
            )
        if "lines" in original and not data["step"]:
            raise ValidationError("only allowed with 'step'", field_name="lines")

    # Loaded as exactly one of the two shapes, so that "to" in the result
    # says which was meant.
    @post_load
    def _one_shape(self, data: dict, **kwargs: Any) -> dict:
        if data["to"]:
            return {"to": data["to"].upper()}
        return {"step": data["step"], "lines": data["lines"]}


# -- Loading ------------------------------------------------------------------


def load_body(schema: type[Schema], data: object) -> dict[str, Any]:
    """Validate a parsed JSON body; raise InvalidInput naming every bad field."""
    if not isinstance(data, Mapping):
        raise InvalidInput(f"body: expected a JSON object, got {_kind(data)}")
    return _load(_instance(schema), data)


@functools.cache
def _instance(schema: type[Schema]) -> Schema:
    """One instance per schema, shared by every request.

    Making one deep-copies its declared fields, which costs more than
    loading a body; loading keeps no state on the instance.
    """
    return schema()


def load_query(schema: type[Schema], args: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a query string (a werkzeug MultiDict or a plain dict).

    Repeated parameters are read only for list fields (``skus``); for the
    others the first value counts, as Flask's ``args.get`` does. An empty
    value (``?page=``) counts as not given.
    """
    instance = _instance(schema)
    values: dict[str, Any] = {}

    for name, field in instance.fields.items():
        key = field.data_key or name
        given = [v for v in _all_values(args, key) if v != ""]
        if not given:
            continue
        values[key] = given if isinstance(field, fields.List) else given[0]

    return _load(instance, values)


def _all_values(args: Mapping[str, Any], key: str) -> list[Any]:
    if hasattr(args, "getlist"):
        return list(args.getlist(key))

    value = args.get(key)
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _load(instance: Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return instance.load(data)
    except ValidationError as error:
        raise InvalidInput(_describe(error.messages)) from error


def _describe(messages: object) -> str:
    """One line for marshmallow's nested error messages, sorted by field path.

    ``{"details": {0: {"qty_ordered": ["must be ..."]}}}`` reads
    ``details[0].qty_ordered: must be ...``.
    """
    failures = sorted(_walk(messages, ()), key=lambda failure: _sort_key(failure[0]))
    lines = [f"{_render(path)}: {message}" for path, message in failures]

    if len(lines) > SHOWN_FAILURES:
        hidden = len(lines) - SHOWN_FAILURES
        lines = [*lines[:SHOWN_FAILURES], f"and {hidden} more"]
    return "; ".join(lines)


def _walk(messages: object, path: tuple) -> Iterator[tuple[tuple, str]]:
    if isinstance(messages, Mapping):
        for key, nested in messages.items():
            # A schema-level message belongs to the object holding it.
            yield from _walk(nested, path if key == SCHEMA else (*path, key))
    elif isinstance(messages, list | tuple):
        for nested in messages:
            yield from _walk(nested, path)
    else:
        yield path, str(messages)


def _render(path: tuple) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.fullmatch(str(part)):
            text += f".{part}" if text else str(part)
        else:
            # A SKU or other client text used as a key: quoted, never dotted.
            text += f"[{str(part)!r}]"
    return text or "body"


def _sort_key(path: tuple) -> tuple:
    # Indexes sort as numbers (details[2] before details[10]), names as text.
    return tuple(
        (0, part, "") if isinstance(part, int) else (1, 0, str(part)) for part in path
    )
