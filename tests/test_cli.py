"""The ``shipper-sim`` command refuses bad options and bad state files clearly."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from serving import SimServer


def shipper_sim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--port", "99999", "expected a port from 0 to 65535"),
        ("--port", "eighty", "expected a port from 0 to 65535"),
        ("--step-delay", "-1", "expected seconds from 0 to 3600"),
        ("--webhook-timeout", "soon", "expected seconds from 0 to 3600"),
        ("--webhook-url", "notaurl", "expected an http:// or https:// URL"),
        ("--retry-delays", "1,1,1,1", "at most 3 times"),
        ("--freeze-at", "yesterday", "expected a UTC time"),
    ],
)
def test_a_bad_serve_option_exits_2_naming_it(option, value, says):
    done = shipper_sim("serve", option, value)

    assert done.returncode == 2
    assert option in done.stderr and says in done.stderr


def test_a_file_that_is_not_a_database_is_refused_in_one_line(tmp_path):
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("shopping list\n" * 100)

    done = shipper_sim("serve", "--db", str(not_a_db), "--port", "0")

    assert done.returncode == 2
    assert "cannot use" in done.stderr and "Traceback" not in done.stderr


def test_a_database_in_a_missing_folder_is_refused_in_one_line(tmp_path):
    done = shipper_sim("serve", "--db", str(tmp_path / "no" / "such.db"))

    assert done.returncode == 2
    assert "cannot use" in done.stderr and "Traceback" not in done.stderr


def test_a_port_in_use_exits_2_saying_so():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = shipper_sim("serve", "--port", str(port))

    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_freeze_at_with_workers_is_refused():
    done = shipper_sim("serve", "--workers", "2", "--freeze-at", "2022-07-15T04:00:00Z")

    assert done.returncode == 2
    assert "single-process" in done.stderr


@pytest.mark.parametrize(
    ("first", "second"),
    [(1, 1), (2, 1), (1, 2)],
    ids=["serve then serve", "--workers then serve", "serve then --workers"],
)
def test_a_second_server_on_the_same_file_is_refused(tmp_path, first, second):
    db = tmp_path / "shared.db"
    with SimServer(db=db, workers=first):
        workers = ["--workers", str(second)] if second > 1 else []
        done = shipper_sim("serve", "--db", str(db), "--port", "0", *workers)

    assert done.returncode == 2
    assert f"{db} is in use by another shipper-sim serve" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_symlink_to_a_file_in_use_is_refused_too(tmp_path):
    db = tmp_path / "real.db"
    link = tmp_path / "link.db"
    link.symlink_to(db)
    with SimServer(db=db):
        done = shipper_sim("serve", "--db", str(link), "--port", "0")

    assert done.returncode == 2
    assert "is in use by another shipper-sim serve" in done.stderr


def test_the_file_is_free_again_once_its_server_is_killed(tmp_path):
    db = tmp_path / "shared.db"
    server = SimServer(db=db)
    try:
        server.start()
        server.process.kill()
        server.process.wait(timeout=10)
        with SimServer(db=db) as again:
            assert again.process.poll() is None
    finally:
        server.close()
