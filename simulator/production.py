"""Production server mode: ``shipper-sim serve --workers N``.

Gunicorn runs N processes that share one SQLite file in WAL mode; each
request's transaction is exclusive across all of them. Webhook delivery and
timed progression run exactly once, in one background process started
beside gunicorn, which looks for due work every ``poll_interval`` seconds
(the HTTP processes cannot wake it directly).
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import multiprocessing
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import replace

from .clock import Clock
from .config import Config
from .serving import READ_TIMEOUT

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.01
# Requests each worker process serves at once. A client whose body stops
# coming holds one of them for up to the read timeout (30 s).
THREADS = 4


def prepare_database(config: Config) -> Config:
    """Create the tables and load the fixtures once, before any worker starts."""
    from .backend import Backend
    from .fixtures import load_fixtures
    from .store import Store

    db_path = config.db_path
    if not db_path:
        folder = tempfile.mkdtemp(prefix="shipper-sim-")
        db_path = os.path.join(folder, "state.db")

    store = Store(db_path)
    Backend(config, store, Clock(), load_fixtures(config.fixtures_dir))
    store.close()
    return replace(
        config,
        db_path=db_path,
        multi_process=True,
        poll_interval=POLL_INTERVAL,
    )


def run_background(config: Config, parent_pid: int, ready=None) -> None:
    """The one process that sends webhooks and runs timed steps.

    ``ready`` (an Event) is set once a SIGTERM would stop it cleanly.
    """
    from .app import Simulator

    logging.basicConfig(level=logging.WARNING)
    # The arbiter decides when this process stops, and tells it with SIGTERM
    # (SIGINT is ignored from the start: see serve_production).
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    if ready is not None:
        ready.set()

    simulator = Simulator(replace(config, start_workers=False))
    simulator.start()
    try:
        # Stop with the server, even when it was killed without warning.
        while os.getppid() == parent_pid and not stopping.wait(0.5):
            pass
    finally:
        simulator.stop()


# The longest request the worker answers on its own thread; a longer one
# goes to a pool thread.
PEEK_BYTES = 64 * 1024
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d+)[ \t]*(?=\r\n)")
# Headers after which only gunicorn's parser can tell where the request ends
# (a head in lower case), and what a request line looks like.
_HANDED_OVER_HEADERS = re.compile(rb"\r\n(?:transfer-encoding|expect|upgrade)[ \t]*:")
_REQUEST_LINE = re.compile(rb"[A-Z]+ [^ \r\n]+ HTTP/\d\.\d\r\n")
# What the kernel holds of an answer the client has not read yet: more than
# the largest answer of Shipper's API (500 order lines, 100 list records),
# so that answering it never waits for the client.
SEND_BUFFER = 1024 * 1024
# How long the worker's own thread may spend on one answer (a client that
# reads nothing of a larger one is cut off then); a pool thread may wait
# READ_TIMEOUT.
OWN_THREAD_TIMEOUT = 5.0
# The worker's own thread answers a connection only while less than this
# of its earlier answers waits to be taken: the send buffer then has room
# for Shipper's largest answer (a detail of 500 lines, about 250 KB).
UNSENT_LIMIT = 64 * 1024
# How long a stopping worker still waits for a request that is coming.
STOP_LINGER = 2.0


def prepare(sock: socket.socket) -> None:
    """Set up a new connection: a deep send buffer, a timeout on every read.

    gunicorn reads a request's line and headers with no timeout at all; the
    kernel's own (``SO_RCVTIMEO``) gives up on a client that stops sending
    them after READ_TIMEOUT, as on a body.
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    seconds = int(READ_TIMEOUT)
    micros = int((READ_TIMEOUT - seconds) * 1e6)
    sock.setsockopt(
        socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, micros)
    )


GAVE_UP = (
    "gave up on a client that stopped sending its request or reading its "
    "answer; its connection is closed"
)


class QuietTimeouts(logging.Filter):
    """gunicorn's log line for a client that was too slow, without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, TimeoutError | BlockingIOError):
            record.msg = GAVE_UP
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


# What has come so far of the next request on a connection (request_state).
WHOLE = "whole"  # its line, headers and body
PARTIAL = "partial"  # a part (or nothing yet): the rest can be waited for
UNSURE = "unsure"  # only gunicorn's parser can tell: it goes to a thread


def request_state(conn) -> tuple[str, bytes]:
    """How much of the next plain HTTP/1.x request on ``conn`` is here.

    Answers the state and the bytes here: those the worker took off the
    socket already (``conn.held``), then those still on it, looked at
    without taking them (``MSG_PEEK``). UNSURE: a request with a
    Transfer-Encoding, Expect or Upgrade header or Content-Lengths that
    differ, a head of more than PEEK_BYTES, a body that would make the
    request longer than that, a first line that is not an HTTP request
    line, a head that ends in bare line feeds, and a connection that has
    ended. What gunicorn's parser read ahead must be in ``conn.held``
    already (take_read_ahead).
    """
    if conn.is_http2 or isinstance(conn.sock, ssl.SSLSocket):
        return UNSURE, b""
    data = conn.held
    try:
        more = conn.sock.recv(
            max(PEEK_BYTES - len(data), 0), socket.MSG_PEEK | socket.MSG_DONTWAIT
        )
    except BlockingIOError:
        more = None
    except OSError:
        return UNSURE, data
    if more == b"" and len(data) < PEEK_BYTES:  # the client closed its side
        return UNSURE, data
    data += more or b""
    line_end = data.find(b"\n")
    if line_end >= 0 and not _REQUEST_LINE.fullmatch(data[: line_end + 1]):
        return UNSURE, data
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if b"\n\n" in data or len(data) >= PEEK_BYTES:
            return UNSURE, data
        return PARTIAL, data
    head = data[: end + 2].lower()
    if _HANDED_OVER_HEADERS.search(head):
        return UNSURE, data
    lengths = set(_CONTENT_LENGTH.findall(head))
    if len(lengths) > 1:
        return UNSURE, data
    length = end + 4 + (int(lengths.pop()) if lengths else 0)
    if len(data) >= length:
        return WHOLE, data
    return (UNSURE if length > PEEK_BYTES else PARTIAL), data


def take_read_ahead(conn) -> None:
    """Move what gunicorn's parser read past the last request into conn.held."""
    parser = getattr(conn, "parser", None)
    reader = getattr(parser, "unreader", None)
    if reader is None or not reader.buf.getvalue():
        return
    conn.held = reader.buf.getvalue() + conn.held
    reader.buf = io.BytesIO()


def room_to_answer(sock: socket.socket) -> bool:
    """Whether the client has taken its earlier answers (the kernel's count).

    Only then does an answer fit in the connection's send buffer whatever
    its size: one that did not would make the worker's own thread wait for
    a client that does not read.
    """
    try:
        import fcntl
        import termios

        unsent = struct.unpack(
            "i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4)
        )[0]
    except (ImportError, OSError, AttributeError):  # not Linux: as before
        return True
    return unsent < UNSENT_LIMIT


class ReadBy:
    """A connection's socket as gunicorn's parser reads it: no read past ``by``."""

    def __init__(self, sock: socket.socket, by: float) -> None:
        self.sock = sock
        self.by = by

    def recv(self, size: int, *flags) -> bytes:
        left = self.by - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not come whole in time")
        before = self.sock.gettimeout()
        if before is not None and before <= left:
            return self.sock.recv(size, *flags)
        self.sock.settimeout(left)
        try:
            return self.sock.recv(size, *flags)
        finally:
            self.sock.settimeout(before)

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


def json_error_worker():
    """gunicorn's gthread worker, answering what gunicorn refuses in JSON.

    A request line or headers gunicorn cannot parse never reach the app; its
    answer would be an HTML page. This worker gives the same answer as
    ``serve`` does in one process: Shipper's envelope (code 810) on Shipper's
    paths, ``{"error": ...}`` elsewhere, and the reason in ``x-sim-error``.
    """
    import selectors
    from functools import partial

    from gunicorn import util
    from gunicorn.workers.gthread import ThreadWorker

    from .app import SHIPPER_PREFIX

    refused = threading.local()
    # The connection the worker's own thread is answering, if any.
    here = threading.local()
    shipper_paths = SHIPPER_PREFIX.encode()
    # The refinements below lean on how gthread hands requests around;
    # with a gunicorn that does it differently, the worker is plain gthread.
    knows_gthread = (
        hasattr(ThreadWorker, "set_accept_enabled")
        and hasattr(ThreadWorker, "murder_pending")
        and list(inspect.signature(ThreadWorker.finish_request).parameters)[1:]
        == ["conn", "fs"]
    )

    def write_json_error(sock, status: int, reason: str, message: str) -> None:
        from . import envelope

        path = getattr(refused, "path", "")
        why = f"{reason}: {message}" if message else reason
        if path.startswith(SHIPPER_PREFIX):
            body, _ = envelope.error(path, 810 if status < 500 else 803, status)
        else:
            body = {"error": why}
        data = json.dumps(body).encode()
        safe = re.sub(r"[^\x20-\x7e]", " ", why)[:500]
        head = (
            f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            f"x-request-id: {uuid.uuid4().hex}\r\nx-sim-error: {safe}\r\n\r\n"
        )
        util.write_nonblock(sock, head.encode("latin-1") + data)

    class JsonErrorWorker(ThreadWorker):
        def init_process(self) -> None:
            # This process is the worker's alone: gunicorn's HTML error page
            # writer is replaced here, not in the arbiter.
            util.write_error = write_json_error
            logging.getLogger("gunicorn.error").addFilter(QuietTimeouts())
            # The connections a pool thread is working on.
            self.in_pool: set = set()
            # Those whose request has not come whole yet.
            self.waiting: set = set()
            # When a stopping worker gives up on them.
            self.stop_by = float("inf")
            super().init_process()

        def enqueue_req(self, conn) -> None:
            # A request goes to a thread only once it is here whole (or
            # gunicorn's parser alone can tell, see request_state): until
            # then the worker keeps what came of it and waits for more in
            # its poller, so that clients sending slowly, or nothing at all,
            # hold no thread. A kept-alive connection whose whole next
            # request to Shipper's API is here is answered on this thread:
            # handing it to a pool thread and back costs two thread switches
            # per request, more than gunicorn's own work. Anything that
            # could make the answer wait (a new connection, a chunked body,
            # an upgrade, the control API's answers of any size) goes to the
            # pool, where it holds one thread, not the worker.
            if not knows_gthread:
                super().enqueue_req(conn)
                return
            if not getattr(conn, "prepared", False):
                prepare(conn.sock)
                conn.prepared = True
                conn.held = b""  # what came of the request, taken off the socket
                conn.due = None  # when the request began to come, + READ_TIMEOUT
            # Looked at without waiting: a connection gunicorn hands back
            # with bytes read ahead still has the timeout of its last answer.
            conn.sock.setblocking(False)
            take_read_ahead(conn)
            state, data = request_state(conn)
            while state == PARTIAL:
                taken = self.take_what_came(conn)
                if taken is None:  # nothing new: the poller says when more comes
                    self.wait_for_more(conn)
                    return
                if not taken:  # closed, or failed: gunicorn's parser sees it
                    break
                state, data = request_state(conn)
            if (
                state == WHOLE
                and conn.initialized
                and data.split(b" ", 2)[1].startswith(shipper_paths)
                and room_to_answer(conn.sock)
            ):
                done: Future = Future()
                here.conn = conn
                try:
                    done.set_result(self.handle(conn))
                except BaseException as exc:  # handed on as the pool would
                    done.set_exception(exc)
                finally:
                    here.conn = None
                self.finish_request(conn, done)
            else:
                self.to_pool(conn)

        @staticmethod
        def take_what_came(conn) -> bytes | None:
            # Off the socket into conn.held, so that the poller wakes the
            # worker when more comes, not at once again. None: nothing came;
            # b"": the client closed its side, or the socket failed.
            try:
                taken = conn.sock.recv(
                    max(PEEK_BYTES - len(conn.held), 0), socket.MSG_DONTWAIT
                )
            except BlockingIOError:
                return None
            except OSError:
                return b""
            conn.held += taken
            conn.data_ready = True  # gunicorn waits for none then
            return taken

        def wait_for_more(self, conn) -> None:
            if conn.due is None:
                conn.due = time.monotonic() + READ_TIMEOUT
            self.waiting.add(conn)
            self.poller.register(
                conn.sock, selectors.EVENT_READ, partial(self.on_more, conn)
            )

        def on_more(self, conn, sock) -> None:
            self.poller.unregister(sock)
            self.waiting.discard(conn)
            self.enqueue_req(conn)

        def murder_pending(self) -> None:
            # Called on every turn of gunicorn's loop. A request that did not
            # come whole within READ_TIMEOUT is given up: a body that stopped
            # is answered (400, code 810 on Shipper's paths), a head that
            # never ended is not; either way the connection is closed. A
            # stopping worker waits STOP_LINGER more at most for each.
            super().murder_pending()
            now = time.monotonic()
            for conn in list(self.waiting):
                if min(conn.due, self.stop_by) > now:
                    continue
                self.waiting.discard(conn)
                self.poller.unregister(conn.sock)
                log.warning(GAVE_UP)
                if b"\r\n\r\n" in conn.held:
                    self.refuse_unfinished_body(conn, conn.held)
                self.nr_conns -= 1
                conn.close()

        def handle_exit(self, sig, frame) -> None:
            if self.alive:
                self.stop_by = time.monotonic() + STOP_LINGER
            super().handle_exit(sig, frame)

        @staticmethod
        def refuse_unfinished_body(conn, held: bytes) -> None:
            refused.path = held.split(b" ", 2)[1].decode("latin-1")
            try:
                write_json_error(
                    conn.sock,
                    400,
                    "Bad Request",
                    f"body: could not be read whole (it stopped before its "
                    f"Content-Length for {READ_TIMEOUT:g} s)",
                )
            except OSError:  # the client is gone too
                pass
            finally:
                refused.path = ""

        def handle(self, conn):
            # The bytes the worker took off the socket come first; no read
            # of the request waits past READ_TIMEOUT from when it began to
            # come (a client sending a byte now and then included).
            held, by = conn.held, conn.due or time.monotonic() + READ_TIMEOUT
            conn.held, conn.due = b"", None
            conn.init()
            if not conn.is_http2:
                if held:
                    conn.parser.unreader.unread(held)
                conn.parser.unreader.sock = ReadBy(conn.sock, by)
            return super().handle(conn)

        def to_pool(self, conn) -> None:
            self.in_pool.add(conn)
            super().enqueue_req(conn)
            if len(self.in_pool) >= self.cfg.threads:
                self.set_accept_enabled(False)

        def finish_request(self, conn, fs) -> None:
            self.in_pool.discard(conn)
            super().finish_request(conn, fs)

        def set_accept_enabled(self, enabled: bool) -> None:
            # A worker whose threads are all taken (by clients whose bodies
            # are slow to come, say) leaves new connections to the other
            # workers; gunicorn alone would take them and let them wait.
            # It takes them again once a thread is free.
            super().set_accept_enabled(enabled and len(self.in_pool) < self.cfg.threads)

        def handle_request(self, req, conn):
            # A body that stops coming is given up as in one process (408),
            # not waited for with a thread held forever; on the worker's own
            # thread, which every other client of the worker waits for,
            # sooner.
            own = getattr(here, "conn", None) is conn
            conn.sock.settimeout(OWN_THREAD_TIMEOUT if own else READ_TIMEOUT)
            return super().handle_request(req, conn)

        def handle_error(self, req, client, addr, exc) -> None:
            refused.path = getattr(req, "path", None) or ""
            try:
                super().handle_error(req, client, addr, exc)
            finally:
                refused.path = ""

    return JsonErrorWorker


# How long the background process has to stop once told to.
BACKGROUND_STOP_TIMEOUT = 5.0
# Between a background process's end and its replacement's start.
RESTART_DELAY = 1.0


class Background:
    """The one background process, started again should it end unasked.

    A ``kill -9`` or the out-of-memory killer would otherwise leave the
    workers answering with no webhooks going out and no timed steps: a
    thread of the arbiter watches it and starts another.
    """

    def __init__(self, config: Config, arbiter_pid: int) -> None:
        self.config = config
        self.arbiter_pid = arbiter_pid
        self.process: multiprocessing.process.BaseProcess | None = None
        self._ready = None  # set by the process once it can take a SIGTERM
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        # Ctrl-C reaches the whole process group. The background process
        # ignores it from its first instruction on (an ignored signal stays
        # ignored across exec); the arbiter stops it once the workers are
        # down.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.process = self._spawn()
        finally:
            signal.signal(signal.SIGINT, previous)
        threading.Thread(
            target=self._watch, name="shipper-sim-background-watch", daemon=True
        ).start()

    def _spawn(self) -> multiprocessing.process.BaseProcess:
        context = multiprocessing.get_context("spawn")
        self._ready = context.Event()
        process = context.Process(
            target=run_background,
            args=(self.config, self.arbiter_pid, self._ready),
            name="shipper-sim-background",
            daemon=True,
        )
        process.start()
        return process

    def _watch(self) -> None:
        # A blocked signal stays blocked in what this thread starts: the
        # replacements shrug off Ctrl-C as the first one does.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        while True:
            self.process.join()
            if self._stopping.wait(RESTART_DELAY):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                log.warning(
                    "the background process (webhooks, timed steps) ended with "
                    "exit code %s; starting another",
                    self.process.exitcode,
                )
                self.process = self._spawn()

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
        process, ready = self.process, self._ready
        if process is None:
            return
        # A SIGTERM that came while it was still starting would end it before
        # its stop takes the journal's last lines in: wait until it can.
        deadline = time.monotonic() + BACKGROUND_STOP_TIMEOUT
        while process.is_alive() and time.monotonic() < deadline:
            if ready.wait(0.05):
                break
        process.terminate()
        process.join(timeout=BACKGROUND_STOP_TIMEOUT)
        if process.is_alive():
            process.kill()


def serve_production(config: Config, host: str, port: int, workers: int) -> int:
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        print(
            "shipper-sim: --workers needs gunicorn: pip install gunicorn "
            "(or pip install -e '.[server]' in the checkout)",
            file=sys.stderr,
        )
        return 2

    from .app import create_app

    # Without --db the state lives in a temp folder, gone with the server
    # (as the temporary database of a single process is).
    is_temporary = not config.db_path
    config = prepare_database(config)
    background = Background(config, os.getpid())
    background.start()

    web_config = replace(config, start_workers=False)

    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", json_error_worker())
            self.cfg.set("threads", THREADS)
            self.cfg.set("timeout", 60)
            self.cfg.set("graceful_timeout", 5)
            self.cfg.set("accesslog", None)
            self.cfg.set("loglevel", "warning")

        def load(self):
            # Called in each worker after the fork: its own app and store.
            return create_app(web_config)

    print(
        f"shipper-sim listening on http://{host}:{port} with {workers} worker "
        f"processes\n  state: {config.db_path}",
        flush=True,
    )
    arbiter = os.getpid()
    code = 1
    try:
        Server().run()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        if os.getpid() != arbiter:
            _leave_worker(code)
        background.stop()
        if is_temporary:
            shutil.rmtree(os.path.dirname(config.db_path), ignore_errors=True)
    return code


def _leave_worker(code: int) -> None:
    """End a gunicorn worker whose run has returned here, after its fork.

    The background process and the state file are the arbiter's. A worker
    that went on would stop the background process (serve_production's
    ``finally``, and multiprocessing's exit hook, which terminates every
    daemon child it knows of, inherited handles included), so it leaves at
    once, without exit hooks.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
