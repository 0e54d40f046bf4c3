"""The ``shipper-sim`` command: serve, run a scenario, list scenarios."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import re
import secrets
import signal
import socket
import sqlite3
import sys
import threading
from pathlib import Path

from .app import create_app
from .clock import parse_iso_utc
from .config import Config
from .serving import make_simulator_server
from .store import claim_database
from .webhooks import MAX_RETRIES

log = logging.getLogger("simulator")

# How long a stopping server waits for the answers under way.
FINISH_TIMEOUT = 5.0


def _delays(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected seconds separated by commas, like 1,2,4; got {text!r}"
        ) from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError("give at least one delay, none negative")
    if len(values) > MAX_RETRIES:
        raise argparse.ArgumentTypeError(
            f"Shipper retries a webhook at most {MAX_RETRIES} times: give at most "
            f"{MAX_RETRIES} delays, got {len(values)}"
        )
    return values


def _bounded(kind: type, low: float, high: float, what: str):
    """An argument type: a number of ``kind`` from ``low`` to ``high``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected {what} from {low:g} to {high:g}, got {text!r}"
            )
        return value

    return parse


_port = _bounded(int, 0, 65535, "a port")
_seconds = _bounded(float, 0, 3600, "seconds")


def _url(text: str) -> str:
    if text and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", text):
        raise argparse.ArgumentTypeError(
            f"expected an http:// or https:// URL, got {text!r}"
        )
    return text


def _instant(text: str) -> float:
    try:
        return parse_iso_utc(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a UTC time like 2022-07-15T04:00:00Z, got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shipper-sim",
        description="A local simulator of Shipper's OMS/WMS outbound API.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the API with the built-in fixtures")
    add_server_options(serve)

    run = sub.add_parser("run", help="run a scenario file")
    run.add_argument("scenario", help="a .toml file, or the name of a built-in one")
    run.add_argument(
        "--client-url", default="", help="send the webhooks here (your receiver)"
    )
    run.add_argument(
        "--simulator-url",
        default="",
        help="use a simulator that is already running instead of a fresh one",
    )
    run.add_argument(
        "--admin-token",
        default="",
        help="the admin token of a --simulator-url that needs one "
        "(or set SHIPPER_SIM_ADMIN_TOKEN)",
    )
    run.add_argument("-v", "--verbose", action="store_true")

    sub.add_parser("scenarios", help="list the built-in scenarios")

    from .demo import add_demo_parser

    add_demo_parser(sub)
    return parser


def add_server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=8080)
    p.add_argument(
        "--db", default=None, help="SQLite file; a temporary database if not given"
    )
    p.add_argument("--fixtures", default=None, help="a fixtures folder of your own")
    p.add_argument(
        "--webhook-url",
        type=_url,
        default="",
        help="webhook URL for clients without one",
    )
    p.add_argument("--auto", action="store_true", help="move every order on by itself")
    p.add_argument(
        "--step-delay", type=_seconds, default=2.0, help="seconds between timed steps"
    )
    p.add_argument(
        "--retry-delays",
        type=_delays,
        default=(1.0, 2.0, 4.0),
        help="seconds before each webhook retry, e.g. 1,2,4",
    )
    p.add_argument(
        "--webhook-timeout", type=_seconds, default=5.0, help="seconds per attempt"
    )
    p.add_argument("--seed", type=int, default=20221)
    p.add_argument(
        "--freeze-at",
        type=_instant,
        default=None,
        help="start with the clock frozen at this UTC time, e.g. 2022-07-15T04:00:00Z",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="serve with gunicorn in this many processes sharing the --db file",
    )
    p.add_argument(
        "--admin-token",
        default=os.environ.get("SHIPPER_SIM_ADMIN_TOKEN", ""),
        help="require this token on /_sim (made up and printed when the host "
        "is not a loopback address and none is given)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")


def config_from(args: argparse.Namespace) -> Config:
    return Config(
        db_path=args.db,
        fixtures_dir=Path(args.fixtures) if args.fixtures else None,
        webhook_url=args.webhook_url,
        auto=args.auto,
        step_delay=args.step_delay,
        retry_delays=args.retry_delays,
        webhook_timeout=args.webhook_timeout,
        seed=args.seed,
        freeze_at=args.freeze_at,
        admin_token=args.admin_token,
    )


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    if not is_loopback(args.host) and not args.admin_token:
        args.admin_token = secrets.token_urlsafe(18)
        print(
            f"shipper-sim: {args.host} is reachable from other machines, so the "
            f"control API and dashboard need the admin token:\n"
            f"  {args.admin_token}\n"
            "  (send it as the x-admin-token header; open the dashboard once "
            "with ?token=...)",
            flush=True,
        )
    if args.workers < 1:
        print("shipper-sim: --workers must be 1 or more", file=sys.stderr)
        return 2
    if args.workers > 1 and args.freeze_at is not None:
        print(
            "shipper-sim: --freeze-at needs a single-process simulator: the "
            "virtual clock lives in one process's memory; drop --workers",
            file=sys.stderr,
        )
        return 2
    try:
        claim = claim_database(args.db) if args.db else open(os.devnull)
    except OSError as exc:
        print(f"shipper-sim: cannot use {args.db}: {exc}", file=sys.stderr)
        return 2
    if claim is None:
        print(
            f"shipper-sim: {args.db} is in use by another shipper-sim serve "
            f"(it holds {args.db}-lock): stop that one, or give another --db",
            file=sys.stderr,
        )
        return 2
    with claim:
        return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    if args.workers > 1:
        from .production import serve_production

        return serve_production(config_from(args), args.host, args.port, args.workers)

    try:
        app = create_app(config_from(args))
    except sqlite3.Error as exc:
        print(
            f"shipper-sim: cannot use {args.db or 'a temporary database'} as the "
            f"state database: {exc}",
            file=sys.stderr,
        )
        return 2
    except (OSError, ValueError) as exc:
        print(f"shipper-sim: cannot start: {exc}", file=sys.stderr)
        return 2
    simulator = app.extensions["shipper_sim"]

    try:
        # Bound here, not by werkzeug, which would exit on its own when the
        # port is taken.
        listener = socket.create_server((args.host, args.port))
        server = make_simulator_server(args.host, args.port, app, fd=listener.fileno())
    except OSError as exc:
        print(
            f"shipper-sim: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        simulator.stop()
        return 2

    _stop_on_signals(server)
    demo = simulator.backend.clients()[0]
    print(
        f"shipper-sim listening on http://{args.host}:{server.port}\n"
        f"  demo API key: {demo['api_key']} (client {demo['client_id']}, "
        f"{demo['tenant_name']})\n"
        f"  state: {args.db or 'temporary, gone at exit'}; progression: "
        f"{'automatic' if args.auto else 'manual (POST /_sim/orders/.../advance)'}",
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        # Requests still being answered commit and journal before the store
        # closes under them.
        left = server.finish_requests(FINISH_TIMEOUT)
        if left:
            log.warning(
                "stopping with %d request(s) still being answered after %.0f s",
                left,
                FINISH_TIMEOUT,
            )
        simulator.stop()
        simulator.store.close()
    return 0


def _stop_on_signals(server) -> None:
    def stop(signum, frame):
        # shutdown() waits for serve_forever to return: call it off this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "run":
        from .scenarios import run_scenario_command

        setup_logging(args.verbose)
        if args.admin_token:
            os.environ["SHIPPER_SIM_ADMIN_TOKEN"] = args.admin_token
        return run_scenario_command(args.scenario, args.client_url, args.simulator_url)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args)
    if args.command == "scenarios":
        from .scenarios import list_builtin

        for name, title in list_builtin():
            print(f"{name:32} {title}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
