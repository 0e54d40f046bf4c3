"""What the HTTP server answers when a request is broken below the app.

Every test talks to a real server on 127.0.0.1 through a raw socket, since
the requests in question (a 100 KB header, a body shorter than its
Content-Length, a chunked body) are exactly what an HTTP client library
refuses to send or handles for you.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import pytest
import requests
from conftest import DEMO_KEY, b2b_body
from flask import Flask

from simulator.serving import READ_TIMEOUT, ShipperRequestHandler, make_simulator_server

HOST = "127.0.0.1"
SOCKET_TIMEOUT = 10.0
SHORT_TIMEOUT = 1.0
LIST_PATH = "/v3/fulfillment/outbounds/WMS"
CREATE_B2B = "/v3/fulfillment/outbound/wms"


# -- a server and a raw client ----------------------------------------------------


@pytest.fixture
def port(app: Flask) -> Iterator[int]:
    """``app`` behind make_simulator_server, with a read timeout of 1 s."""
    server = make_simulator_server(HOST, 0, app, read_timeout=SHORT_TIMEOUT)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server.port
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after the answer

    def json(self) -> dict:
        assert self.headers.get("content-type") == "application/json", self.headers
        return json.loads(self.body)


def read_answer(conn: socket.socket, timeout: float = SOCKET_TIMEOUT) -> Answer:
    """One HTTP answer, read until the server closes the connection."""
    conn.settimeout(timeout)
    data = b""
    closed = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            piece = conn.recv(65536)
        except TimeoutError:
            break
        if not piece:
            closed = True
            break
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    assert head, "no answer came"
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers, body, closed)


def exchange(port: int, raw: bytes) -> Answer:
    """Send ``raw`` whole, say that nothing more comes, read the answer."""
    with socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT) as conn:
        conn.sendall(raw)
        conn.shutdown(socket.SHUT_WR)
        return read_answer(conn)


def request_head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(body: bytes, size: int = 65536) -> bytes:
    pieces = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    ]
    return b"".join(pieces) + b"0\r\n\r\n"


def assert_shipper_refusal(answer: Answer, status: int, path_start: str) -> dict:
    body = answer.json()
    metadata = body["metadata"]
    assert answer.status == status
    assert metadata["http_status_code"] == status
    assert metadata["errors"][0]["code"] == 810
    assert metadata["path"].startswith(path_start)
    assert answer.headers.get("x-request-id")
    return metadata


# -- what the server refuses before the app --------------------------------------


def test_a_huge_header_is_refused_in_shippers_envelope(port):
    huge = "x-big: " + "a" * 100_000
    raw = request_head("GET", LIST_PATH, f"x-api-key: {DEMO_KEY}", huge)

    answer = exchange(port, raw)

    metadata = assert_shipper_refusal(answer, 431, LIST_PATH)
    assert metadata["http_status"] == "Request Header Fields Too Large"
    assert "header line is longer than 65536 bytes" in answer.headers["x-sim-error"]
    assert b"<html" not in answer.body.lower()
    assert answer.closed


def test_too_many_headers_are_refused_in_shippers_envelope(port):
    many = [f"x-h{i}: {i}" for i in range(150)]
    answer = exchange(port, request_head("GET", LIST_PATH, *many))

    assert_shipper_refusal(answer, 431, LIST_PATH)
    assert "more than 100" in answer.headers["x-sim-error"]


def test_a_request_line_over_64_kb_is_a_414_in_the_envelope(port):
    path = f"{LIST_PATH}?so_number=" + "A" * 70_000
    answer = exchange(port, request_head("GET", path))

    metadata = assert_shipper_refusal(answer, 414, LIST_PATH)
    assert metadata["http_status"] == HTTPStatus(414).phrase
    assert len(metadata["path"]) <= 2048
    assert "request line" in answer.headers["x-sim-error"]


def test_a_malformed_request_line_is_a_400_in_the_envelope(port):
    raw = f"GET {LIST_PATH} extra HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    answer = exchange(port, raw)

    assert_shipper_refusal(answer, 400, LIST_PATH)
    assert "Bad request syntax" in answer.headers["x-sim-error"]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b"GARBAGE", "Bad request syntax"),
        (b"FOO BAR BAZ", "Bad request version"),
        (b"GET /_sim/health", "HTTP/0.9 requests are not served"),
    ],
    ids=["one word", "no HTTP version", "no version"],
)
def test_a_request_line_without_a_version_gets_a_status_line_and_headers(
    port, line, says
):
    answer = exchange(port, line + b"\r\n\r\n")

    assert answer.status == 400
    assert says in answer.headers["x-sim-error"]
    assert "error" in answer.json()


def test_a_huge_header_off_shippers_paths_is_plain_json(port):
    raw = request_head("GET", "/_sim/health", "x-big: " + "a" * 100_000)

    answer = exchange(port, raw)

    assert answer.status == 431
    assert "header line is longer" in answer.json()["error"]


def test_a_refused_head_request_gets_no_body(port):
    answer = exchange(port, request_head("HEAD", LIST_PATH, "x-big: " + "a" * 70_000))

    assert answer.status == 431
    assert answer.body == b""


# -- a client that stops sending ---------------------------------------------------


def test_a_body_shorter_than_its_length_is_answered_then_closed(port):
    raw = request_head(
        "POST",
        CREATE_B2B,
        f"x-api-key: {DEMO_KEY}",
        "Content-Type: application/json",
        "Content-Length: 100",
    )
    with socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT) as stalled:
        stalled.sendall(raw + b"{}")
        started = time.monotonic()

        # Meanwhile every other request is answered as usual.
        other = requests.get(f"http://{HOST}:{port}/_sim/health", timeout=5)
        assert other.status_code == 200
        assert time.monotonic() - started < SHORT_TIMEOUT

        answer = read_answer(stalled)
        waited = time.monotonic() - started

    assert SHORT_TIMEOUT * 0.8 <= waited < SHORT_TIMEOUT + 4
    assert_shipper_refusal(answer, 408, CREATE_B2B)
    assert "nothing more came for 1 s" in answer.headers["x-sim-error"]
    assert answer.closed


def test_a_silent_connection_is_closed_after_the_timeout(port):
    with socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT) as silent:
        started = time.monotonic()
        silent.settimeout(SHORT_TIMEOUT + 4)
        assert silent.recv(1024) == b""  # closed, with nothing to say
        assert time.monotonic() - started < SHORT_TIMEOUT + 4


def test_the_handler_waits_30_seconds_unless_told_otherwise():
    assert ShipperRequestHandler.timeout == READ_TIMEOUT == 30.0
    with pytest.raises(ValueError, match="above 0"):
        make_simulator_server(HOST, 0, Flask(__name__), read_timeout=0)


# -- chunked bodies and the size limit -------------------------------------------


def chunked_post(path: str, body: bytes, key: str = DEMO_KEY) -> bytes:
    head = request_head(
        "POST",
        path,
        f"x-api-key: {key}",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
    )
    return head + chunked(body)


def test_a_chunked_body_over_the_limit_is_a_413(port, sim):
    body = b'{"doc_no": "' + b"x" * 2_000_000 + b'"}'

    answer = exchange(port, chunked_post(CREATE_B2B, body))

    assert_shipper_refusal(answer, 413, CREATE_B2B)
    assert "larger than" in answer.headers["x-sim-error"]
    assert sim.store.value("SELECT COUNT(*) FROM orders") == 0


def test_valid_json_cut_at_the_limit_is_still_a_413(port, sim):
    """A body whose first megabyte parses must not be taken for the whole."""
    valid = json.dumps(b2b_body("CHUNK-BIG-01")).encode()
    body = valid + b" " * 2_000_000

    answer = exchange(port, chunked_post(CREATE_B2B, body))

    assert answer.status == 413
    assert sim.store.value("SELECT COUNT(*) FROM orders") == 0


@pytest.mark.parametrize("padded_to_the_limit", [False, True])
def test_a_chunked_body_up_to_the_limit_is_read(port, sim, padded_to_the_limit):
    body = json.dumps(b2b_body("CHUNK-OK-01")).encode()
    if padded_to_the_limit:
        body += b" " * (sim.config.max_body_bytes - len(body))

    answer = exchange(port, chunked_post(CREATE_B2B, body))

    assert answer.status == 200, answer.headers.get("x-sim-error")
    assert answer.json()["data"]


def test_a_chunked_body_over_the_limit_on_the_control_api_is_a_413(port):
    body = b'{"client_id": "' + b"9" * 2_000_000 + b'"}'

    answer = exchange(port, chunked_post("/_sim/clients", body))

    assert answer.status == 413
    assert "larger than" in answer.json()["error"]


BROKEN_CHUNKS = {
    "size not hex": b"ZZ\r\nabc\r\n0\r\n\r\n",
    "no end of chunk": b"3\r\nabcXX0\r\n\r\n",
}


@pytest.mark.parametrize("chunks", BROKEN_CHUNKS.values(), ids=BROKEN_CHUNKS.keys())
def test_a_broken_chunked_body_is_a_400_at_once(port, sim, chunks):
    raw = chunked_post(CREATE_B2B, b"").removesuffix(b"0\r\n\r\n") + chunks
    with socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT) as conn:
        started = time.monotonic()
        conn.sendall(raw)  # and the connection stays open, as a client's would
        answer = read_answer(conn, timeout=SHORT_TIMEOUT * 3)
        waited = time.monotonic() - started

    metadata = assert_shipper_refusal(answer, 400, CREATE_B2B)
    assert answer.headers["x-sim-error"].startswith("body: could not be read")
    assert metadata["path"] == CREATE_B2B
    # Not held until the read timeout: the body is not read a second time.
    assert waited < SHORT_TIMEOUT, waited
    assert sim.store.value("SELECT COUNT(*) FROM orders") == 0


# -- logging ----------------------------------------------------------------------


def test_the_request_line_goes_to_the_simulators_log_at_info(port, caplog):
    caplog.set_level(logging.INFO)

    assert requests.get(f"http://{HOST}:{port}/_sim/health", timeout=5).ok

    lines = [
        (r.name, r.levelno, r.getMessage())
        for r in caplog.records
        if "/_sim/health" in r.getMessage()
    ]
    assert lines == [("simulator.http", logging.INFO, "GET /_sim/health -> 200")]


# -- the commands use the handler -------------------------------------------------


def command() -> list[str]:
    beside = Path(sys.executable).with_name("shipper-sim")
    found = str(beside) if beside.exists() else shutil.which("shipper-sim")
    return [found] if found else [sys.executable, "-m", "simulator"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_health(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            if requests.get(f"http://{HOST}:{port}/_sim/health", timeout=1).ok:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answered on port {port} within 30 s")


@pytest.mark.parametrize("name", ["serve", "demo"])
def test_serve_and_demo_refuse_a_huge_header_in_json(name):
    port = free_port()
    process = subprocess.Popen(
        [*command(), name, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_for_health(process, port)
        raw = request_head("GET", LIST_PATH, "x-big: " + "a" * 100_000)

        answer = exchange(port, raw)

        assert_shipper_refusal(answer, 431, LIST_PATH)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        process.stderr.close()
