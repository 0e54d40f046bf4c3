"""``shipper-sim serve --workers N``: gunicorn processes over one WAL file.

What must hold: every worker answers, each webhook and each timed step
happens once (not once per worker), what lives in one process's memory (the
virtual clock, faults) is refused with a reason, and a signal stops every
process the server started.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import threading
import time
from collections import Counter
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from conftest import b2b_body, b2c_body
from serving import (
    Api,
    CountingReceiver,
    SimServer,
    at_once,
    session_processes,
    wait_for,
)

from simulator import schemas
from simulator.app import Simulator
from simulator.config import Config
from simulator.production import prepare_database

STATUS_CODES = ["00", "40", "60", "63", "66", "80", "99"]


def expected_webhooks(numbers: list[str]) -> Counter:
    """One SO created, one status per code and one PGI per order."""
    expected = Counter()
    for number in numbers:
        expected[(number, "so_created", "")] = 1
        expected[(number, "pgi", "")] = 1
        for code in STATUS_CODES:
            expected[(number, "status", code)] = 1
    return expected


def only(receiver: CountingReceiver, numbers: list[str]) -> Counter:
    return Counter({k: v for k, v in receiver.counts.items() if k[0] in numbers})


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def parent_of(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rindex(")") + 2 :].split()[1])


def http_workers(server: SimServer) -> list[int]:
    """The gunicorn workers: the arbiter's children that run the serve command."""
    arbiter = server.process.pid
    return [
        pid
        for pid in server.processes()
        if pid != arbiter and parent_of(pid) == arbiter and " serve " in cmdline(pid)
    ]


def background_processes(server: SimServer) -> list[int]:
    return [p for p in server.processes() if "spawn_main" in cmdline(p)]


@pytest.fixture(scope="module")
def receiver():
    found = CountingReceiver()
    yield found
    found.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, receiver):
    db = tmp_path_factory.mktemp("production") / "state.db"
    with SimServer(
        "--webhook-url",
        receiver.url,
        "--retry-delays",
        "0.2,0.2,0.2",
        db=db,
        workers=3,
    ) as found:
        yield found


@pytest.fixture
def api(server: SimServer) -> Api:
    return Api(server.url)


def test_three_workers_start_beside_one_background_process(server):
    # Ready means one worker answers; on a busy machine the others may still
    # be booting.
    wait_for(lambda: len(http_workers(server)) == 3, 30, "three workers")
    background = background_processes(server)
    assert len(background) == 1, [cmdline(p) for p in server.processes()]
    assert "with 3 worker processes" in server.output()


def test_every_worker_answers(api):
    # More requests at once than one worker has threads (4): several
    # processes must be answering for all of them to come back.
    answers = at_once([lambda: api.call("GET", "/express")] * 24)
    assert [a.status_code for a in answers] == [200] * 24


def test_each_webhook_is_sent_once_not_once_per_worker(api, receiver):
    api.set_stock("SKU-PROD-HOOKS", 1000)
    numbers = [f"PROD-HOOK-{i:02d}" for i in range(12)]

    def life_of(number: str) -> list[int]:
        answers = [api.create("wms", b2b_body(number, lines=[("SKU-PROD-HOOKS", 1)]))]
        answers += [api.advance(number, to=t) for t in ("PICKED", "CLOSED")]
        return [a.status_code for a in answers]

    assert at_once([lambda n=n: life_of(n) for n in numbers]) == [[200] * 3] * 12

    expected = expected_webhooks(numbers)
    wait_for(
        lambda: only(receiver, numbers).total() >= expected.total(), 30, "every webhook"
    )
    time.sleep(0.5)  # room for a second copy to arrive
    assert only(receiver, numbers) == expected


def test_a_background_process_that_dies_is_started_again(server, api, receiver):
    (victim,) = background_processes(server)
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: [p for p in background_processes(server) if p != victim],
        20,
        "another background process",
    )
    assert len(background_processes(server)) == 1

    number = "PROD-BG-KILLED"
    assert api.create("wms", b2b_body(number)).status_code == 200
    wait_for(lambda: receiver.counts[(number, "status", "00")], 15, "the webhook")
    assert receiver.counts[(number, "so_created", "")] == 1
    assert "the background process (webhooks, timed steps) ended" in server.output()


def test_the_clock_and_faults_answer_409_with_a_reason(api):
    calls = [
        ("POST", "/clock/freeze", {}),
        ("POST", "/clock/advance", {"seconds": 5}),
        ("POST", "/clock/unfreeze", {}),
        ("GET", "/faults", None),
        ("POST", "/faults", {"endpoint": "create_sales_order", "status": 503}),
        ("DELETE", "/faults", None),
        ("DELETE", "/faults/1", None),
    ]
    for method, path, body in calls:
        response = api.sim(method, path, json=body)
        assert response.status_code == 409, (method, path, response.text)
        reason = response.json()["error"]
        assert "--workers" in reason and "single-process" in reason, reason

    # Nothing was injected: Shipper's API answers as usual.
    assert api.create("wms", b2b_body("PROD-NO-FAULT")).status_code == 200


def test_a_worker_that_exits_leaves_webhooks_and_the_other_workers_running(
    server, api, receiver
):
    (victim, *_) = http_workers(server)
    os.kill(victim, signal.SIGTERM)  # gunicorn starts another in its place
    wait_for(
        lambda: victim not in server.processes() and len(http_workers(server)) == 3,
        20,
        "gunicorn to replace the worker",
    )

    number = "PROD-AFTER-EXIT"
    assert api.create("wms", b2b_body(number)).status_code == 200
    wait_for(lambda: receiver.counts[(number, "status", "00")], 15, "the webhook")
    assert receiver.counts[(number, "so_created", "")] == 1


def test_timed_progression_runs_each_step_once(tmp_path):
    receiver = CountingReceiver()
    server = SimServer(
        "--auto",
        "--step-delay",
        "0.2",
        "--webhook-url",
        receiver.url,
        db=tmp_path / "auto.db",
        workers=3,
    )
    try:
        server.start()
        api = Api(server.url)
        api.set_stock("SKU-PROD-AUTO", 100)
        numbers = ["PROD-AUTO-B2B", "PROD-AUTO-B2C"]
        lines = [("SKU-PROD-AUTO", 2)]
        assert api.create("wms", b2b_body(numbers[0], lines=lines)).status_code == 200
        assert api.create("oms", b2c_body(numbers[1], lines=lines)).status_code == 200

        expected = expected_webhooks(numbers)
        wait_for(
            lambda: only(receiver, numbers).total() >= expected.total(),
            30,
            "every step of both orders",
        )
        time.sleep(1.0)  # five step delays: a step run twice would show

        assert only(receiver, numbers) == expected
        for number in numbers:
            timeline = api.sim("GET", f"/orders/WH-TGR04/{number}").json()
            codes = [e["code"] for e in timeline["events"] if e["note"] == "status"]
            assert codes == STATUS_CODES, (number, timeline["events"])
            assert receiver.codes_in_arrival_order(number) == STATUS_CODES
    finally:
        server.close()
        receiver.close()


@pytest.mark.parametrize("workers", [1, 3], ids=["single", "workers"])
@pytest.mark.parametrize(
    "how", ["sigterm", "ctrl-c"], ids=["SIGTERM", "Ctrl-C to the group"]
)
def test_a_signal_stops_every_process(workers, how):
    server = SimServer(workers=workers)  # no --db
    try:
        server.start()
        # Ready means one worker answers; the others may still be booting.
        expected = 1 if workers == 1 else 1 + workers + 1
        wait_for(
            lambda: len(server.processes()) >= expected, 30, "every process to start"
        )

        if how == "sigterm":
            code = server.signal(signal.SIGTERM)
        else:
            # A terminal's Ctrl-C reaches every process of the foreground group.
            os.killpg(server.process.pid, signal.SIGINT)
            code = server.process.wait(timeout=20)

        session = server.process.pid
        wait_for(lambda: not session_processes(session), 20, "every process to end")
        assert code == 0, server.output()
        assert "Traceback" not in server.output(), server.output()
    finally:
        server.close()


def test_a_request_under_way_at_a_stop_is_answered_stored_and_journalled(tmp_path):
    """One process (gunicorn's own graceful stop covers --workers, where
    faults cannot be set)."""
    db = tmp_path / "state.db"
    server = SimServer(db=db)
    try:
        server.start()
        api = Api(server.url)
        fault = {"endpoint": "create_sales_order", "delay": 1.5}
        assert api.sim("POST", "/faults", json=fault).status_code == 201
        answers = []
        create = threading.Thread(
            target=lambda: answers.append(api.create("wms", b2b_body("STOPPED01")))
        )
        create.start()
        time.sleep(0.5)  # the create is under way, in its delay

        code = server.signal(signal.SIGTERM)
        create.join(timeout=20)

        assert code == 0, server.output()
        assert [a.status_code for a in answers] == [200], server.output()
        assert "closed database" not in server.output(), server.output()
        assert "could not journal" not in server.output(), server.output()
    finally:
        server.close()
    with sqlite3.connect(db) as stored:
        assert stored.execute(
            "SELECT COUNT(*) FROM orders WHERE order_no = 'STOPPED01'"
        ).fetchone() == (1,)
        assert stored.execute(
            "SELECT status FROM journal WHERE path = '/v3/fulfillment/outbound/wms' "
            "AND request_body LIKE '%STOPPED01%'"
        ).fetchall() == [(200,)]


@pytest.mark.parametrize("kept_alive", [False, True])
def test_a_request_still_coming_at_a_stop_is_waited_for_and_answered(
    tmp_path, kept_alive
):
    create = keyed_request(
        "POST", "/v3/fulfillment/outbound/wms", b2b_body("STOPPING01")
    )
    with SimServer(db=tmp_path / "state.db", workers=2) as server:
        conn = socket.create_connection(("127.0.0.1", server.port))
        with conn:
            if kept_alive:
                conn.sendall(keyed_request("GET", "/_sim/health"))
                read_answers(conn, 1)
            conn.sendall(create[:-20])
            time.sleep(0.3)

            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            conn.sendall(create[-20:])

            [(status, body)] = read_answers(conn, 1)
        assert status == 200, body
        assert server.process.wait(timeout=15) == 0


def test_every_worker_asks_for_the_admin_token_on_the_control_api():
    server = SimServer("--admin-token", "s3cret-for-tests", workers=2)
    try:
        server.start()
        api = Api(server.url)
        # Enough calls at once that both workers answer some of them.
        refused = at_once([lambda: api.sim("GET", "/clients")] * 12)
        assert {r.status_code for r in refused} == {401}
        assert "x-admin-token" in refused[0].json()["error"]

        token = {"x-admin-token": "s3cret-for-tests"}
        allowed = at_once([lambda: api.sim("GET", "/clients", headers=token)] * 12)
        assert {r.status_code for r in allowed} == {200}
        assert api.sim("GET", "/health").status_code == 200
        # Shipper's API asks for the client's key only.
        assert api.call("GET", "/express").status_code == 200
    finally:
        server.close()


def test_after_a_kill_9_of_the_arbiter_the_other_processes_end_by_themselves(
    tmp_path,
):
    # A file of the test's own: the temp folder of a server without --db
    # outlives a kill -9.
    server = SimServer(db=tmp_path / "state.db", workers=2)
    try:
        server.start()
        assert len(server.processes()) >= 4  # arbiter, 2 workers, background

        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=20)

        session = server.process.pid
        wait_for(lambda: not session_processes(session), 20, "the orphans to end")
    finally:
        server.close()


def test_workers_without_db_use_a_temp_file_removed_at_exit():
    server = SimServer(workers=2)
    try:
        server.start()
        found = re.search(r"state: (\S+)", server.output())
        assert found, server.output()
        state = Path(found.group(1))
        assert state.is_file() and state.name == "state.db"
        assert state.parent.name.startswith("shipper-sim-")

        assert server.stop() == 0
        assert not state.parent.exists(), "the temp folder outlived the server"
    finally:
        server.close()


# -- the background process between its looks ----------------------------------------


def test_the_background_looks_again_only_when_another_process_wrote(tmp_path):
    config = replace(
        prepare_database(Config(db_path=str(tmp_path / "state.db"))),
        start_workers=False,
    )
    web, background = Simulator(config), Simulator(config)
    looks = []
    run_once = background.workers.run_once
    background.workers.run_once = lambda: looks.append(time.monotonic()) or run_once()
    background.start()
    try:
        time.sleep(0.3)  # 30 polls of 10 ms with nothing written
        quiet = len(looks)
        assert quiet <= 3, f"{quiet} full looks with nothing written"

        client = web.backend.clients()[0]
        changes = {"progression": "auto", "step_delay": 0.05}
        web.backend.update_client(client["client_id"], changes)
        body = b2c_body()
        web.backend.create_sales_order(
            web.backend.client(client["client_id"]),
            "B2C",
            schemas.load_body(schemas.B2CCreateSchema, body),
        )
        # The write in the other connection is seen, and the timed step the
        # order got runs in the background process.
        wait_for(
            lambda: (
                web.backend.store.value(
                    "SELECT status FROM orders WHERE order_no = ?", (body["so_number"],)
                )
                != "REGISTERED"
            ),
            10,
            "the background process to take the order's first timed step",
        )
        assert len(looks) > quiet
    finally:
        background.stop()
        web.store.close()
        background.store.close()


# -- what gunicorn refuses before the app ---------------------------------------------


def raw_answer(server: SimServer, raw: bytes) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(raw)
        conn.shutdown(socket.SHUT_WR)
        data = b""
        while piece := conn.recv(65536):
            data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines)
    }
    return int(status_line.split()[1]), headers, body


KEYED = b"x-api-key: demo-key-toko-contoh\r\n"
LONG = b"a" * 9000
REFUSED_BY_THE_SERVER = {
    "request line": (b"GARBAGE\r\n\r\n", 400),
    "header name": (b"GET /_sim/health HTTP/1.1\r\nBad Header: y\r\n\r\n", 400),
    "long request line": (
        b"GET /_sim/health?" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
        414,
    ),
    "huge header": (
        b"GET /_sim/health HTTP/1.1\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n",
        431,
    ),
}


@pytest.mark.parametrize(
    ("raw", "status"),
    REFUSED_BY_THE_SERVER.values(),
    ids=REFUSED_BY_THE_SERVER.keys(),
)
def test_what_gunicorn_refuses_is_answered_in_json(server, raw, status):
    got, headers, body = raw_answer(server, raw)

    assert got == status
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"]
    assert json.loads(body)["error"] == headers["x-sim-error"]


def test_a_broken_chunked_body_is_shippers_810_under_gunicorn(server):
    raw = (
        b"POST /v3/fulfillment/outbound/wms HTTP/1.1\r\nHost: x\r\n"
        + KEYED
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"ZZ\r\nabc\r\n0\r\n\r\n"
    )

    got, headers, body = raw_answer(server, raw)

    assert got == 400
    assert json.loads(body)["metadata"]["errors"][0]["code"] == 810
    assert headers["x-sim-error"].startswith("body: could not be read")


def test_a_body_or_head_that_stops_coming_is_given_up_after_the_read_timeout(server):
    from simulator.serving import READ_TIMEOUT

    head = (
        b"POST /v3/fulfillment/outbound/wms HTTP/1.1\r\nHost: x\r\n"
        + KEYED
        + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{}"
    )
    bodies = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(6)]
    heads = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
    # A head or a body that keeps coming, a byte a second, is given up all
    # the same.
    trickled = socket.create_connection(("127.0.0.1", server.port))
    heads.append(trickled)
    bodies.append(socket.create_connection(("127.0.0.1", server.port)))
    stop = threading.Event()

    def trickle() -> None:
        with suppress(OSError):
            while not stop.wait(1.0):
                trickled.sendall(b"a")
                bodies[-1].sendall(b" ")

    try:
        for conn in bodies:
            conn.sendall(head)  # and nothing more
        for conn in heads:
            conn.sendall(head[:40])
        threading.Thread(target=trickle, daemon=True).start()
        started = time.monotonic()

        assert requests.get(f"{server.url}/_sim/health", timeout=10).ok

        answers = []
        for conn in (bodies[0], bodies[-1]):
            conn.settimeout(READ_TIMEOUT + 15)
            answers.append(conn.recv(65536))
        waited = time.monotonic() - started
        closed = []
        for conn in heads:
            conn.settimeout(READ_TIMEOUT + 15)
            try:
                closed.append(conn.recv(65536))
            except ConnectionResetError:
                closed.append(b"")
        head_waited = time.monotonic() - started
    finally:
        stop.set()
        for conn in bodies + heads:
            conn.close()

    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert b"could not be read whole" in answer
    assert READ_TIMEOUT * 0.8 <= waited < READ_TIMEOUT + 15
    # A head that never ends gets no answer: the connection is closed.
    assert closed == [b""] * len(heads)
    assert head_waited < READ_TIMEOUT + 15
    log = server.output()
    assert "gave up on a client that stopped sending its request" in log
    assert "Socket error processing request" not in log


# -- which requests a worker waits for, and which it answers on its own thread ------


class PeekedConnection:
    """What request_state looks at on one of gunicorn's connections."""

    def __init__(self, sock: socket.socket) -> None:
        from io import BytesIO
        from types import SimpleNamespace

        self.sock = sock
        self.is_http2 = False
        self.held = b""
        self.parser = SimpleNamespace(unreader=SimpleNamespace(buf=BytesIO()))


POST_HEAD = (
    b"POST /v3/fulfillment/outbound/wms HTTP/1.1\r\nHost: x\r\n"
    b"Content-Type: application/json\r\nContent-Length: 12\r\n\r\n"
)
WHOLE = {
    "a GET": b"GET /_sim/health HTTP/1.1\r\nHost: x\r\n\r\n",
    "a POST with all of its body": POST_HEAD + b'{"doc": "1"}',
    "a POST and the start of the next request": POST_HEAD + b'{"doc": "1"}GET /',
    "a header whose name only starts like Upgrade": b"GET /_sim/health HTTP/1.1"
    b"\r\nUpgrade-Insecure-Requests: 1\r\n\r\n",
    "the same Content-Length twice": b"POST / HTTP/1.1\r\nContent-Length: 2\r\n"
    b"Content-Length: 2\r\n\r\n{}",
}
PARTIAL = {
    "nothing yet": b"",
    "half a request line": b"GET /_sim/hea",
    "headers without their end": b"GET /_sim/health HTTP/1.1\r\nHost: x\r\n",
    "a POST without all of its body": POST_HEAD + b'{"doc"',
}
UNSURE = {
    "a chunked body": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "an Expect header": b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n"
    b"Content-Length: 2\r\n\r\n{}",
    "an Upgrade header": b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
    "two different Content-Lengths": b"POST / HTTP/1.1\r\nContent-Length: 2\r\n"
    b"Content-Length: 3\r\n\r\n{}",
    "a body longer than the worker looks at": b"POST / HTTP/1.1\r\n"
    b"Content-Length: 70000\r\n\r\n{",
    "a head longer than the worker looks at": b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000,
    "a request line of two words": b"GET /\r\nHost: x\r\n\r\n",
    "lines that end in bare line feeds": b"GET /_sim/health HTTP/1.1\nHost: x\n\n",
    "bytes that are not HTTP": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n",
}


@pytest.mark.parametrize(
    "raw, state",
    [*((raw, "whole") for raw in WHOLE.values())]
    + [*((raw, "partial") for raw in PARTIAL.values())]
    + [*((raw, "unsure") for raw in UNSURE.values())],
    ids=[*WHOLE, *PARTIAL, *UNSURE],
)
def test_the_worker_waits_itself_only_for_a_request_it_can_tell_the_end_of(raw, state):
    from simulator.production import request_state

    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        theirs.setblocking(False)
        with suppress(BlockingIOError):
            theirs.sendall(raw)
        time.sleep(0.05)

        assert request_state(PeekedConnection(ours))[0] == state
        if raw:  # looked at, not taken
            assert ours.recv(65536) == raw[:65536]


def test_bytes_gunicorn_read_ahead_are_looked_at_before_those_on_the_socket():
    from simulator.production import request_state, take_read_ahead

    request = WHOLE["a GET"]
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        theirs.sendall(request[3:])
        time.sleep(0.05)
        read_ahead = PeekedConnection(ours)
        read_ahead.parser.unreader.buf.write(request[:3])

        take_read_ahead(read_ahead)

        assert read_ahead.parser.unreader.buf.getvalue() == b""
        assert request_state(read_ahead) == ("whole", request)


def test_a_thread_reads_a_request_no_longer_than_its_time_however_it_trickles():
    from simulator.production import ReadBy

    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(30)
        reader = ReadBy(ours, time.monotonic() + 0.6)
        stop = threading.Event()

        def trickle() -> None:
            with suppress(OSError):
                while not stop.wait(0.1):
                    theirs.sendall(b"a")

        threading.Thread(target=trickle, daemon=True).start()
        started = time.monotonic()
        got = b""
        try:
            with pytest.raises(TimeoutError):
                while True:
                    got += reader.recv(1)
        finally:
            stop.set()

        assert 0.5 < time.monotonic() - started < 1.5
        assert got.startswith(b"aaa")
        assert ours.gettimeout() == 30  # as it was, for the answer


def test_bytes_the_worker_took_count_with_those_still_on_the_socket():
    from simulator.production import request_state

    request = keyed_request("POST", "/v3/fulfillment/outbound/wms", {"x": 1})
    ours, theirs = socket.socketpair()
    with ours, theirs:
        taken = PeekedConnection(ours)
        taken.held = request[:30]
        assert request_state(taken)[0] == "partial"

        theirs.sendall(request[30:])
        time.sleep(0.05)

        assert request_state(taken) == ("whole", request)
        assert ours.recv(65536) == request[30:]  # still there for gunicorn


def test_more_bytes_taken_than_the_worker_looks_at_are_looked_at_all_the_same():
    from simulator.production import PEEK_BYTES, request_state

    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        taken = PeekedConnection(ours)
        taken.held = b"GET / HTTP/1.1\r\nX: " + b"a" * PEEK_BYTES
        assert request_state(taken)[0] == "unsure"

        pipelined = b"GET /_sim/health HTTP/1.1\r\nHost: x\r\n\r\n" * 2000
        taken.held = pipelined
        assert request_state(taken) == ("whole", pipelined)


def test_a_client_that_closed_mid_request_goes_to_gunicorn_to_be_closed():
    from simulator.production import request_state

    ours, theirs = socket.socketpair()
    with ours:
        theirs.sendall(b"GET /_sim/hea")
        theirs.close()
        time.sleep(0.05)
        taken = PeekedConnection(ours)
        assert request_state(taken)[0] == "partial"  # the end is behind them

        taken.held = ours.recv(65536)

        assert request_state(taken) == ("unsure", b"GET /_sim/hea")


def test_many_clients_sending_slowly_or_nothing_stall_nobody_else(server, api):
    # Many more than the workers' 3 x 4 threads, each kind.
    slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(120)]
    create = keyed_request(
        "POST", "/v3/fulfillment/outbound/wms", b2b_body("PROD-SLOWLY-1")
    )
    stop = threading.Event()

    def trickle(conn: socket.socket, data: bytes) -> None:
        with suppress(OSError):
            for byte in data:
                if stop.wait(0.5):
                    return
                conn.sendall(bytes([byte]))

    try:
        for conn in slow[:30]:  # a head a byte at a time
            threading.Thread(target=trickle, args=(conn, create), daemon=True).start()
        for conn in slow[30:60]:  # a whole head, then a body a byte at a time
            head_end = create.index(b"\r\n\r\n") + 4
            conn.sendall(create[:head_end])
            threading.Thread(
                target=trickle, args=(conn, create[head_end:]), daemon=True
            ).start()
        for conn in slow[60:75]:  # one whole request, then half the next
            conn.sendall(keyed_request("GET", "/_sim/health") + create[:40])
        for conn in slow[75:90]:  # a browser's header, then nothing
            conn.sendall(
                b"GET /_sim/health HTTP/1.1\r\nUpgrade-Insecure-Requests: 1\r\n"
            )
        # and slow[90:] send nothing at all
        time.sleep(1.5)

        waits = []
        for n in range(10):
            started = time.monotonic()
            answer = api.create("wms", b2b_body(f"PROD-QUICK-{n}"))
            assert answer.status_code == 200, answer.text
            assert api.detail("wms", f"PROD-QUICK-{n}").status_code == 200
            waits.append(time.monotonic() - started)
        assert requests.get(f"{server.url}/_sim/health", timeout=10).ok
    finally:
        stop.set()
        for conn in slow:
            conn.close()

    assert max(waits) < 1.0, waits


def read_answers(conn: socket.socket, count: int) -> list[tuple[int, dict]]:
    """``count`` answers from one keep-alive connection: status and JSON body."""
    conn.settimeout(10)
    data, answers = b"", []
    while len(answers) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].decode("latin-1")
            length = int(re.search(r"(?i)content-length: *(\d+)", head).group(1))
            if len(data) >= head_end + 4 + length:
                body = data[head_end + 4 : head_end + 4 + length]
                answers.append((int(head.split()[1]), json.loads(body)))
                data = data[head_end + 4 + length :]
                continue
        piece = conn.recv(65536)
        assert piece, f"connection closed after {len(answers)} answers"
        data += piece
    return answers


def keyed_request(method: str, path: str, body: dict | None = None) -> bytes:
    data = json.dumps(body).encode() if body is not None else b""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\n".encode()
        + KEYED
        + b"Content-Type: application/json\r\n"
        + f"Content-Length: {len(data)}\r\n\r\n".encode()
        + data
    )


def test_a_kept_alive_connection_is_answered_whole_split_or_pipelined(server):
    body = b2b_body("PROD-KEEP-1")
    create = keyed_request("POST", "/v3/fulfillment/outbound/wms", body)
    detail = keyed_request(
        "GET",
        f"/v3/fulfillment/warehouse/{body['warehouse_id']}/outbound/wms/PROD-KEEP-1",
    )
    with socket.create_connection(("127.0.0.1", server.port)) as conn:
        conn.sendall(detail)
        [(status, _)] = read_answers(conn, 1)
        assert status == 404  # not created yet

        # Kept alive from here on: a request whose body comes a moment
        # after its head, then two requests in one write.
        conn.sendall(create[:-10])
        time.sleep(0.3)
        conn.sendall(create[-10:])
        [(status, created)] = read_answers(conn, 1)
        conn.sendall(detail + detail)
        answers = read_answers(conn, 2)

    assert status == 200, created
    assert created["data"]["group_key"]
    assert [status for status, _ in answers] == [200, 200]
    assert answers[0][1]["data"]["outbound"]["order_no"] == "PROD-KEEP-1"


def test_a_client_stalled_mid_request_on_a_kept_alive_connection_stalls_nobody_else(
    server,
):
    path = "/v3/fulfillment/outbound/wms"
    stalled = []
    try:
        # One after the other, as many as there are workers: a worker that
        # waited for the rest of a request itself would take no more
        # connections, so each would stall one more worker.
        for _ in range(3):
            conn = socket.create_connection(("127.0.0.1", server.port))
            stalled.append(conn)
            conn.sendall(keyed_request("GET", "/_sim/health"))
            read_answers(conn, 1)
            conn.sendall(keyed_request("POST", path, {"x": 1})[:-3])  # then nothing
            time.sleep(0.2)

        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port)) as other:
            for _ in range(20):
                other.sendall(keyed_request("GET", "/_sim/health"))
                [(status, _)] = read_answers(other, 1)
                assert status == 200
        assert time.monotonic() - started < 5
    finally:
        for conn in stalled:
            conn.close()


def connection_to(server: SimServer, worker: str) -> socket.socket:
    """A kept-alive connection served by ``worker`` (its request ids' first half).

    Reads almost nothing it is not asked to: a small receive buffer.
    """
    for _ in range(200):
        conn = socket.socket()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.connect(("127.0.0.1", server.port))
        conn.sendall(keyed_request("GET", "/_sim/health"))
        conn.settimeout(10)
        head = conn.recv(65536).decode("latin-1")
        if re.search(r"(?i)x-request-id: *(\w{16})", head).group(1) == worker:
            return conn
        conn.close()
    raise AssertionError(f"no connection reached worker {worker}")


def test_clients_that_never_read_large_answers_stall_nobody_else(server, api):
    body = b2b_body("PROD-BIG-1", lines=[("SKU-CAP-01", 1)] * 500)
    assert api.create("wms", body).status_code == 200
    # The journal keeps request bodies up to 128,000 characters, refused
    # ones too: 40 of them make its answer larger than the kernel's largest
    # send buffer (4 MB).
    for n in range(40):
        big = b2b_body(f"PROD-BIG-N{n}", notes="x" * 120_000)
        assert api.create("wms", big).status_code == 400
    detail = keyed_request(
        "GET",
        f"/v3/fulfillment/warehouse/{body['warehouse_id']}/outbound/wms/PROD-BIG-1",
    )
    ids = {requests.get(f"{server.url}/_sim/health").headers["x-request-id"][:16]}
    for _ in range(60):
        ids.add(requests.get(f"{server.url}/_sim/health").headers["x-request-id"][:16])
    greedy = []
    try:
        # On every worker: one client asks for a detail of 500 lines (about
        # 250 KB), one for the request journal, and one for 40 details at
        # once (10 MB), and none reads.
        for worker in sorted(ids):
            for raw in (
                detail,
                keyed_request("GET", "/_sim/requests?limit=2000"),
                detail * 40,
            ):
                conn = connection_to(server, worker)
                conn.sendall(raw)
                greedy.append(conn)
        time.sleep(0.3)

        started = time.monotonic()
        for _ in range(20):
            assert requests.get(f"{server.url}/_sim/health", timeout=10).ok
        assert time.monotonic() - started < 3
    finally:
        for conn in greedy:
            conn.close()
