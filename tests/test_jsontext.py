"""JSON on the busy paths: orjson where installed, the standard library's
answers always.

Every value and text here goes through both; where they could differ (big
integers, lone surrogates, a byte-order mark, types orjson writes its own
way) the standard library must be the one that answers.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import DEMO_KEY, WAREHOUSE, b2b_body, close_app
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz import JSON_VALUES

from simulator import jsontext
from simulator.app import create_app
from simulator.config import Config
from simulator.journal import Journal
from simulator.spool import FileSpool
from simulator.store import Store


def stdlib_dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def same(a: object, b: object) -> bool:
    """Equal, and of the same types all the way down (1 is not 1.0); walked
    without recursion, for values nested as deep as a body may be."""
    pending = [(a, b)]
    while pending:
        a, b = pending.pop()
        if type(a) is not type(b):
            return False
        if isinstance(a, dict):
            if list(a) != list(b):
                return False
            pending.extend((a[key], b[key]) for key in a)
        elif isinstance(a, list):
            if len(a) != len(b):
                return False
            pending.extend(zip(a, b, strict=True))
        elif isinstance(a, float) and math.isnan(a):
            if not math.isnan(b):
                return False
        elif a != b:
            return False
    return True


@contextmanager
def orjson_as(module: object) -> Iterator[None]:
    """jsontext with ``module`` as its orjson (None: the standard library)."""
    saved, jsontext.orjson = jsontext.orjson, module
    try:
        yield
    finally:
        jsontext.orjson = saved


@pytest.fixture(params=["orjson", "stdlib"])
def either(request) -> Iterator[str]:
    """Each test twice: with orjson (when installed) and without it."""
    if request.param == "orjson":
        pytest.importorskip("orjson")
        yield request.param
    else:
        with orjson_as(None):
            yield request.param


def test_orjson_is_installed_with_the_test_extra():
    assert jsontext.orjson is not None


# The fuzz tests' values, and texts with lone surrogates, integers around
# the 64-bit limits and floats near zero, alone and in lists.
awkward = (
    st.text(st.sampled_from('a\ud800\udfffé日\n\x00\x7f"\\/\u2028'))
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(min_value=-1e-3, max_value=1e-3)
)
values = JSON_VALUES | awkward | st.lists(awkward, max_size=5)


@pytest.mark.parametrize(
    "number", [1e-5, 9.99e-05, 1e-7, -2.5e-6, 1.5e-9, 5e-324, 1e-300, 1e16, -0.0, 0.1]
)
def test_a_float_is_written_as_python_writes_it(either, app, number):
    answer = app.json.response({"price": number}).get_data(as_text=True)

    assert jsontext.dumps([number]) == f"[{number!r}]"
    assert answer == f'{{"price":{number!r}}}\n'


@settings(max_examples=400, deadline=None)
@given(value=values)
def test_a_value_is_written_as_the_standard_library_writes_it(value):
    for orjson in (jsontext.orjson, None):
        with orjson_as(orjson):
            text = jsontext.dumps(value)
        assert text == stdlib_dumps(value)


@settings(max_examples=400, deadline=None)
@given(value=values, ascii_only=st.booleans(), spaced=st.booleans())
def test_a_text_is_read_as_the_standard_library_reads_it(value, ascii_only, spaced):
    separators = (", ", ": ") if spaced else (",", ":")
    text = json.dumps(value, ensure_ascii=ascii_only, separators=separators)
    try:
        raw = text.encode()
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 body holds one raw
        raw = None
    for orjson in (jsontext.orjson, None):
        with orjson_as(orjson):
            assert same(jsontext.loads(text), json.loads(text))
            if raw is not None:
                assert same(jsontext.loads(raw), json.loads(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"qty": 18446744073709551616}',  # past 64 bits: orjson makes a float
        b'{"qty": -9223372036854775809}',
        b"[18446744073709551615]",  # fits, but 20 digits go the slow way
        b"[1e400]",  # infinite
        b'"\\ud800"',  # a lone surrogate
        b'"\xed\xa0\x80"',  # the same, as UTF-8 bytes
        b"\xef\xbb\xbf{}",  # a byte-order mark
        '{"a": 1}'.encode("utf-16"),
        b"NaN",
        b"[" * 990 + b"]" * 990,  # deeper than the standard library goes
        b'{"a": ' * 600 + b"1" + b"}" * 600,
        b'{"a": 1,}',
        b"",
    ],
)
def test_orjson_leaves_to_the_standard_library_what_it_reads_otherwise(raw):
    pytest.importorskip("orjson")

    assert jsontext.fast_loads(raw) is jsontext.SLOW


@pytest.mark.parametrize(
    "raw, value",
    [
        (b'{"_at": 1796436791584830000}', {"_at": 1796436791584830000}),
        (b"[9999999999999999999]", [9999999999999999999]),
        (b"[-999999999999999999]", [-999999999999999999]),
        (b'{"on": "2026-12-05", "phone": "+62-812-3456-7890"}', None),
    ],
)
def test_orjson_reads_numbers_that_fit_in_64_bits(raw, value):
    pytest.importorskip("orjson")

    parsed = jsontext.fast_loads(raw)

    assert parsed is not jsontext.SLOW
    assert same(parsed, json.loads(raw))
    if value is not None:
        assert same(parsed, value)


def test_a_big_integer_stays_an_integer(either):
    value = jsontext.loads(b'{"qty": 123456789012345678901234567890}')

    assert same(value, {"qty": 123456789012345678901234567890})


def test_an_error_is_the_standard_librarys(either):
    with pytest.raises(json.JSONDecodeError) as raised:
        jsontext.loads(b'{"a": }')

    assert str(raised.value) == "Expecting value: line 1 column 7 (char 6)"


@dataclasses.dataclass
class Point:
    x: int


class Name(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        {1: "key not a string"},
        2**64,
        "\ud800",
        Name("a subclass"),
        {"nested": ["\udfff"]},
    ],
)
def test_orjson_leaves_to_the_standard_library_what_it_writes_otherwise(value):
    pytest.importorskip("orjson")

    assert jsontext.fast_dumps(value) is jsontext.SLOW
    assert jsontext.dumps(value) == stdlib_dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2026, 12, 5, 9, 30, tzinfo=datetime.UTC),
        datetime.date(2026, 12, 5),
        uuid.UUID(int=7),
        Point(3),
    ],
)
def test_answers_write_other_types_as_flask_does(either, app, value):
    from flask.json.provider import DefaultJSONProvider

    flask_own = DefaultJSONProvider(app)

    ours = app.json.response({"value": value}).get_data(as_text=True)
    theirs = flask_own.response({"value": value}).get_data(as_text=True)

    assert json.loads(ours) == json.loads(theirs)


def test_answers_keep_the_order_of_keys_and_the_characters(either, app):
    body = app.json.response({"z": "é", "a": "\u2028", "m": [1, 2.5]})

    assert body.get_data(as_text=True) == '{"z":"é","a":"\u2028","m":[1,2.5]}\n'


def test_the_journal_spool_keeps_any_text_as_it_was(either, tmp_path):
    folder = str(tmp_path / "state.db-requests")
    journal = Journal(Store(str(tmp_path / "state.db")), 100, folder)
    texts = ["é ü 日本", "\\ud800 as written", "line\nbreak", "\x00\x7f", '"q"']
    writer = FileSpool(folder)
    for n, text in enumerate(texts):
        writer.append(
            {
                "time": 1.0 + n,
                "request_id": f"r{n}",
                "client_id": 1,
                "method": "POST",
                "path": "/v3/x",
                "status": 200,
                "code": None,
                "reason": text,
                "request_body": text,
                "response_body": "",
                "duration_ms": 1.0,
            }
        )
    writer.close()
    for line in Path(folder).glob("*.jsonl"):
        assert line.read_bytes().count(b"\n") == len(texts)  # one line each

    kept = {e["request_id"]: e for e in journal.list(limit=10)}

    assert [kept[f"r{n}"]["reason"] for n in range(len(texts))] == texts


def awkward_bodies() -> list[bytes]:
    """B2B creates, each with a new number, that orjson and json could
    read differently, and some that neither takes."""
    bodies = []

    def body(n: int, **fields: object) -> dict:
        return {**b2b_body(), "doc_no": f"J{n:03d}", **fields}

    def line(**fields: object) -> list:
        return [{**b2b_body()["details"][0], **fields}]

    values = [
        2**63 - 1,
        2**63,
        2**64 - 1,
        2**64,
        -(2**63),
        -(2**63) - 1,
        10**30,
        0.00001,
        1e-7,
        1e16,
        1e300,
        -0.0,
        5e-324,
        0.1 + 0.2,
        "é日🙂\u2028",
    ]
    for n, value in enumerate(values):
        bodies.append(json.dumps(body(n, details=line(qty_ordered=value))).encode())
        bodies.append(json.dumps(body(100 + n, details=line(price=value))).encode())
        bodies.append(json.dumps(body(200 + n, seller_remark=value)).encode())
    sample = json.dumps(body(300))
    bodies += [
        sample.replace('"doc_no"', '"doc_no": "dup", "doc_no"').encode(),
        sample.replace('"J300"', '"J\\ud800"').encode(),
        sample.replace('"J300"', '"J301"').encode("utf-16"),
        b"\xef\xbb\xbf" + sample.replace('"J300"', '"J302"').encode(),
        sample.replace('"J300"', '"J303"').replace("}", "} x", 1).encode(),
        sample.replace('"J300"', '"J304", "price": NaN').encode(),
        sample.replace('"J300"', '"J305", "qty": 1e400').encode(),
        b'{"a": ' * 2000 + b"1" + b"}" * 2000,
        b'{"warehouse_id": ' + b"[" * 990 + b"]" * 990 + b"}",
        sample.replace('"J300"', '"J306", "x": ' + "[" * 990 + "]" * 990).encode(),
        sample.replace('"J300"', '"J307", "x": ' + "[" * 400 + "]" * 400).encode(),
        b"",
        b"[]",
    ]
    return bodies


def test_the_api_answers_alike_with_and_without_orjson():
    pytest.importorskip("orjson")
    config = Config(start_workers=False, freeze_at=1_780_000_000.0)
    apps = {"orjson": create_app(config), "stdlib": create_app(config)}
    orjson_module = jsontext.orjson
    seen: dict[str, list] = {"orjson": [], "stdlib": []}
    headers = {"x-api-key": DEMO_KEY, "content-type": "application/json"}
    try:
        for raw in awkward_bodies():
            for name, app in apps.items():
                with orjson_as(orjson_module if name == "orjson" else None):
                    client = app.test_client()
                    created = client.post(
                        "/v3/fulfillment/outbound/wms", data=raw, headers=headers
                    )
                    answers = [created]
                    if created.status_code == 200:
                        number = json.loads(raw)["doc_no"]
                        path = f"/v3/fulfillment/warehouse/{WAREHOUSE}/outbound/wms"
                        answers.append(client.get(f"{path}/{number}", headers=headers))
                seen[name].append(
                    [
                        (a.status_code, a.headers.get("x-sim-error"), a.data)
                        for a in answers
                    ]
                )
        for name, app in apps.items():
            client = app.test_client()
            journal = client.get("/_sim/requests", query_string={"limit": 1000})
            # The bodies with a price of 1e-7, written as Python writes it.
            assert b'"price":1e-07' in journal.data
            kept = journal.get_json()
            for entry in kept["requests"]:
                entry.pop("request_id")
                entry.pop("duration_ms")
            log = client.get("/_sim/webhooks", query_string={"limit": 1000}).get_json()
            seen[name].append(kept)
            seen[name].append(log)
    finally:
        for app in apps.values():
            close_app(app)

    *answers, kept, log = seen["orjson"]
    assert any(status == 200 for (status, _, _), *_ in answers)  # some taken
    assert len(kept["requests"]) > len(answers) and log["webhooks"]
    assert len(seen["orjson"]) == len(seen["stdlib"])
    for ours, theirs in zip(seen["orjson"], seen["stdlib"], strict=True):
        assert same(ours, theirs)
