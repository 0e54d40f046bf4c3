"""The baseline: a bare Flask app, served the way ``shipper-sim serve`` serves.

    python bench/bare_app.py --port 8099 [--workers N]

Two endpoints on Shipper's paths that do what any Flask JSON endpoint does
(parse the body, answer a small JSON document) and nothing else: no key
check, no validation, no database. One process with werkzeug's threaded
server, as ``serve``; with ``--workers``, gunicorn processes with the worker
class and settings of ``serve --workers``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from flask import Flask, request

app = Flask(__name__)


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/v3/fulfillment/outbound/<kind>")
def create(kind: str):
    body = request.get_json()
    return {
        "metadata": {
            "path": request.path,
            "http_status_code": 200,
            "http_status": "OK",
            "timestamp": int(time.time()),
        },
        "data": {"group_key": f"hwoutbound{kind}.{body.get('doc_no', '')}"},
    }


@app.get("/v3/fulfillment/warehouse/<warehouse_id>/outbound/<kind>/<order_no>")
def detail(warehouse_id: str, kind: str, order_no: str):
    return {
        "metadata": {
            "path": request.path,
            "http_status_code": 200,
            "http_status": "OK",
            "timestamp": int(time.time()),
        },
        "data": {
            "outbound": {
                "order_no": order_no,
                "warehouse_id": warehouse_id,
                "so_status": "CREATED",
                "details": [],
            }
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)

    if args.workers > 1:
        from gunicorn.app.base import BaseApplication

        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from simulator.production import THREADS, json_error_worker

        class Server(BaseApplication):
            def load_config(self) -> None:
                # As simulator/production.py sets them, with its worker class.
                self.cfg.set("bind", f"127.0.0.1:{args.port}")
                self.cfg.set("workers", args.workers)
                self.cfg.set("worker_class", json_error_worker())
                self.cfg.set("threads", THREADS)
                self.cfg.set("accesslog", None)
                self.cfg.set("loglevel", "warning")

            def load(self):
                return app

        Server().run()
        return 0

    from werkzeug.serving import make_server

    make_server("127.0.0.1", args.port, app, threaded=True).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
