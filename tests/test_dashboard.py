"""The dashboard at /_sim/, in a real browser (Debian's Chromium, headless).

One simulator with its workers on and fast retries serves the whole module on
a free 127.0.0.1 port; each test makes its own orders, named for the test, so
the tests do not depend on each other's order.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from simulator.app import Simulator, create_app
from simulator.config import Config
from simulator.fakedata import fake_b2b_body, fake_b2c_body, make_faker

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip(
        "needs Debian's chromium and chromium-driver: "
        "apt-get install -y chromium chromium-driver",
        allow_module_level=True,
    )

DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "img" / "dashboard.png"
CLIENT = {
    "client_id": 112233,
    "key": "demo-key-toko-contoh",
    "oms": "CS674",
    "wms": "HJ",
}
WAREHOUSE = "WH-TGR04"
WAIT = 6.0


# -- a simulator, a webhook receiver and a browser ------------------------------


class Receiver:
    """A client's webhook endpoint on 127.0.0.1 that answers 200."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                outer.bodies.append(self.rfile.read(length))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Live:
    base: str
    simulator: Simulator
    receiver: Receiver

    def control(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.base + path, timeout=5, **kwargs)

    def shipper(self, method: str, path: str, body: object, key: str = "") -> dict:
        reply = requests.request(
            method,
            f"{self.base}/v3/fulfillment{path}",
            json=body,
            headers={"x-api-key": key or CLIENT["key"]},
            timeout=5,
        )
        return {"status": reply.status_code, "body": reply.json()}

    def advance(self, order_no: str, **body) -> None:
        reply = self.control(
            "POST", f"/_sim/orders/{WAREHOUSE}/{order_no}/advance", json=body
        )
        assert reply.status_code == 200, reply.text

    def use_receiver(self) -> None:
        self.control(
            "PATCH",
            f"/_sim/clients/{CLIENT['client_id']}",
            json={"webhook_url": self.receiver.url},
        )


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    receiver = Receiver()
    app = create_app(Config(retry_delays=(0.1, 0.1, 0.1), webhook_timeout=1.0))
    simulator = app.extensions["shipper_sim"]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    result = Live(f"http://127.0.0.1:{server.port}", simulator, receiver)
    result.use_receiver()
    yield result
    server.shutdown()
    server.server_close()
    simulator.stop()
    receiver.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    profile = tempfile.mkdtemp(prefix="shipper-sim-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # With both paths given, selenium runs no Selenium Manager (nothing is
    # looked up or downloaded).
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_window_size(1366, 768)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(live: Live, browser) -> webdriver.Chrome:
    """The dashboard, freshly loaded, for the first client, at laptop size."""
    browser.set_window_size(1366, 768)
    browser.get("about:blank")  # a new document, even if only the hash differs
    browser.get(f"{live.base}/_sim/")
    wait_until(browser, lambda d: live_text(d) == "Live")
    return browser


# -- helpers --------------------------------------------------------------------

_fake = make_faker(5)


def b2b(live: Live, doc_no: str, lines: list[tuple[str, int]] | None = None) -> str:
    body = fake_b2b_body(
        _fake,
        warehouse_id=WAREHOUSE,
        customer_id=CLIENT["wms"],
        carrier_id="SICEPAT",
        carrier_name="SiCepat",
        lines=[{"sku": s, "qty_ordered": q} for s, q in lines or [("SKU-CAP-01", 2)]],
        doc_no=doc_no,
    )
    answer = live.shipper("POST", "/outbound/wms", body)
    assert answer["status"] == 200, answer
    return doc_no


def b2c(live: Live, so_number: str, lines: list[tuple[str, int]] | None = None) -> str:
    body = fake_b2c_body(
        _fake,
        warehouse_id=WAREHOUSE,
        customer_id=CLIENT["oms"],
        tenant_name="Toko Contoh",
        express_code="JNE",
        lines=[{"sku": s, "qty_ordered": q} for s, q in lines or [("SKU-TSHIRT-M", 1)]],
        so_number=so_number,
    )
    answer = live.shipper("POST", "/outbound/oms", body)
    assert answer["status"] == 200, answer
    return so_number


def wait_until(driver, condition, timeout: float = WAIT, message: str = ""):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)
    except TimeoutException:
        raise AssertionError(message or "the page did not get there in time") from None


def live_text(driver) -> str:
    return driver.find_element(By.ID, "live-text").text


def card(driver, order_no: str):
    found = driver.find_elements(By.CSS_SELECTOR, f'.card[data-order-no="{order_no}"]')
    return found[0] if found else None


def column_of(driver, order_no: str) -> str | None:
    """The status column an order's card is in, or None if it is not shown."""
    return driver.execute_script(
        "const c = document.querySelector(`.card[data-order-no='${arguments[0]}']`);"
        "return c ? c.closest('.column').dataset.status : null;",
        order_no,
    )


def wait_in_column(driver, order_no: str, status: str) -> None:
    wait_until(
        driver,
        lambda d: column_of(d, order_no) == status,
        message=f"{order_no} never reached the {status} column "
        f"(it is in {column_of(driver, order_no)})",
    )


def select_order(driver, order_no: str) -> None:
    wait_until(driver, lambda d: card(d, order_no) is not None)
    card(driver, order_no).click()
    wait_until(
        driver,
        lambda d: d.find_element(By.ID, "order-title").text == order_no,
        message=f"the order panel never showed {order_no}",
    )


def action_result(driver) -> str:
    return driver.find_element(By.ID, "action-result").text


def open_tab(driver, name: str) -> None:
    driver.find_element(By.ID, f"tab-{name}").click()
    wait_until(driver, lambda d: d.find_element(By.ID, f"pane-{name}").is_displayed())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_viewport(driver, width: int, height: int) -> None:
    """Make the page exactly this size, as a screen of that size shows it."""
    driver.set_window_size(width, height + 200)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


# -- the board ------------------------------------------------------------------


def test_board_shows_the_first_clients_orders_by_status(live, page):
    b2b(live, "DASH-BOARD-01")

    wait_in_column(page, "DASH-BOARD-01", "CREATED")
    shown = card(page, "DASH-BOARD-01").text
    assert "B2B" in shown and "00 Create SO" in shown
    chosen = Select(page.find_element(By.ID, "client-select")).first_selected_option
    assert chosen.get_attribute("value") == str(CLIENT["client_id"])
    columns = [
        c.get_attribute("data-status")
        for c in page.find_elements(By.CLASS_NAME, "column")
    ]
    assert columns == [
        "REGISTERED",
        "CREATED",
        "ALLOCATED",
        "PICKED",
        "PACKED",
        "SHIPPED",
        "CLOSED",
        "CANCELLED",
    ]


def open_dashboard(live: Live, driver, fragment: str = "") -> None:
    driver.get("about:blank")
    driver.get(f"{live.base}/_sim/{fragment}")
    wait_until(driver, lambda d: live_text(d) == "Live")


def chosen_client(driver) -> str:
    chosen = Select(driver.find_element(By.ID, "client-select")).first_selected_option
    return chosen.get_attribute("value")


def test_page_opens_on_the_demo_client_not_on_the_lowest_id(live, browser):
    added = {
        "client_id": 1001,
        "api_key": "dash-added-client-key",
        "tenant_name": "Added By A Test",
        "oms_customer_id": "CS1001",
        "wms_customer_id": "ADDED",
        "warehouses": [WAREHOUSE],
    }
    reply = live.control("POST", "/_sim/clients", json=added)
    assert reply.status_code == 201, reply.text
    try:
        open_dashboard(live, browser)
        assert chosen_client(browser) == str(CLIENT["client_id"])
        options = browser.find_elements(By.CSS_SELECTOR, "#client-select option")
        assert options[0].get_attribute("value") == str(CLIENT["client_id"])
        assert "1001" in [o.get_attribute("value") for o in options]

        # A link that names the other client still opens on it.
        open_dashboard(live, browser, "#client=1001")
        assert chosen_client(browser) == "1001"
        assert "ADDED" in browser.find_element(By.ID, "client-codes").text
    finally:
        live.control("DELETE", "/_sim/clients/1001")


def test_card_moves_across_the_board_without_a_reload_and_keeps_focus(live, page):
    b2c(live, "DASH-MOVE-01")
    wait_in_column(page, "DASH-MOVE-01", "REGISTERED")
    page.execute_script("window.sameDocument = true;")
    page.execute_script("arguments[0].focus();", card(page, "DASH-MOVE-01"))

    live.advance("DASH-MOVE-01", to="ALLOCATED")
    wait_in_column(page, "DASH-MOVE-01", "ALLOCATED")
    assert "40 Allocated" in card(page, "DASH-MOVE-01").text
    live.advance("DASH-MOVE-01", to="SHIPPED")
    wait_in_column(page, "DASH-MOVE-01", "SHIPPED")

    assert page.execute_script("return window.sameDocument === true;"), "page reloaded"
    focused = page.execute_script("return document.activeElement.dataset.orderNo;")
    assert focused == "DASH-MOVE-01"


def test_an_unchanged_card_is_not_rebuilt(live, page):
    b2b(live, "DASH-KEEP-01")
    b2b(live, "DASH-KEEP-02")
    wait_in_column(page, "DASH-KEEP-02", "CREATED")
    page.execute_script(
        "document.querySelector(`.card[data-order-no='DASH-KEEP-01']`).marked = 1;"
    )

    live.advance("DASH-KEEP-02", to="PICKED")
    wait_in_column(page, "DASH-KEEP-02", "PICKED")

    still = page.execute_script(
        "return document.querySelector(`.card[data-order-no='DASH-KEEP-01']`).marked;"
    )
    assert still == 1


# -- one order: timeline and actions -------------------------------------------


def test_timeline_lists_statuses_webhooks_and_the_creating_request(live, page):
    live.use_receiver()
    b2b(live, "DASH-TIME-01")
    live.advance("DASH-TIME-01", to="ALLOCATED")
    select_order(page, "DASH-TIME-01")

    timeline = page.find_element(By.ID, "timeline")
    wait_until(page, lambda d: "DELIVERED" in timeline.text)
    text = timeline.text
    assert "00 Create SO" in text and "40 Allocated" in text
    assert "SO created" in text and "status 40 Allocated" in text
    codes = page.find_elements(By.CSS_SELECTOR, "#timeline .attempt .attempt-status-ok")
    assert codes and codes[0].text == "200"
    created_by = page.find_element(By.ID, "created-by").text
    assert "POST /v3/fulfillment/outbound/wms" in created_by and "200" in created_by


def test_advance_one_step_and_to_a_status_from_the_page(live, page):
    b2c(live, "DASH-ADV-01")
    select_order(page, "DASH-ADV-01")

    button = page.find_element(By.ID, "advance-next")
    assert "release" in button.text
    button.click()
    wait_in_column(page, "DASH-ADV-01", "CREATED")

    wait_until(page, lambda d: "allocate" in d.find_element(By.ID, "advance-next").text)
    Select(page.find_element(By.ID, "advance-target")).select_by_value("60")
    page.find_element(By.ID, "advance-to").click()
    wait_in_column(page, "DASH-ADV-01", "PICKED")
    assert "now PICKED" in action_result(page)


def test_one_step_short_asks_a_quantity_per_line(live, page):
    b2b(live, "DASH-SHORT-01", lines=[("SKU-TSHIRT-M", 3), ("SKU-CAP-01", 2)])
    select_order(page, "DASH-SHORT-01")

    page.find_element(By.ID, "short-open").click()
    inputs = page.find_elements(By.CSS_SELECTOR, "#short-lines input")
    assert [i.get_attribute("value") for i in inputs] == ["3", "2"]
    inputs[0].clear()
    inputs[0].send_keys("1")
    page.find_element(By.CSS_SELECTOR, "#short-form button[type=submit]").click()

    wait_in_column(page, "DASH-SHORT-01", "ALLOCATED")
    wait_until(
        page, lambda d: "30 Partially Allocated" in card(d, "DASH-SHORT-01").text
    )
    detail = live.control("GET", f"/_sim/orders/{WAREHOUSE}/DASH-SHORT-01").json()[
        "order"
    ]["details"]
    assert [line["qty_allocated"] for line in detail] == [1, 2]


def test_cancel_from_the_page_before_allocation(live, page):
    b2b(live, "DASH-CANCEL-01")
    select_order(page, "DASH-CANCEL-01")

    page.find_element(By.ID, "cancel-order").click()

    wait_in_column(page, "DASH-CANCEL-01", "CANCELLED")
    assert "Shipper answered HTTP 200" in action_result(page)


def cancel_button_state(driver) -> tuple[bool, str]:
    button = driver.find_element(By.ID, "cancel-order")
    return button.is_enabled(), button.get_attribute("title")


def test_cancel_is_disabled_once_an_order_is_cancelled_or_closed(live, page):
    b2b(live, "DASH-DONE-01")
    live.control("POST", f"/_sim/orders/{WAREHOUSE}/DASH-DONE-01/cancel", json={})
    b2b(live, "DASH-DONE-02")
    live.advance("DASH-DONE-02", to="CLOSED")

    select_order(page, "DASH-DONE-01")
    wait_until(page, lambda d: not cancel_button_state(d)[0])
    assert "already cancelled" in cancel_button_state(page)[1]
    assert not page.find_element(By.ID, "cancel-reason").is_enabled()

    select_order(page, "DASH-DONE-02")
    wait_until(page, lambda d: "CLOSED" in cancel_button_state(d)[1])
    assert cancel_button_state(page)[0] is False


def test_cancel_stays_open_after_allocation_and_says_shipper_refuses(live, page):
    b2b(live, "DASH-OPEN-01")
    select_order(page, "DASH-OPEN-01")
    wait_until(page, lambda d: cancel_button_state(d)[1])
    enabled, title = cancel_button_state(page)
    assert enabled and "3020" not in title

    live.advance("DASH-OPEN-01", to="PICKED")
    wait_until(page, lambda d: "3020" in cancel_button_state(d)[1])
    assert cancel_button_state(page)[0] is True


def test_refused_cancel_after_allocation_shows_shippers_3020(live, page):
    b2b(live, "DASH-REFUSE-01")
    live.advance("DASH-REFUSE-01", to="ALLOCATED")
    select_order(page, "DASH-REFUSE-01")

    page.find_element(By.ID, "cancel-order").click()

    wait_until(page, lambda d: "3020" in action_result(d))
    result = action_result(page)
    assert "HTTP 400" in result
    assert "Sales Order Has Been Allocated. Cancel Is Not Allowed." in result
    assert '"code": 3020' in result  # Shipper's body, as the client gets it
    assert column_of(page, "DASH-REFUSE-01") == "ALLOCATED"


def test_dead_webhook_url_shows_every_retry_then_redelivers(live, page):
    dead = f"http://127.0.0.1:{free_port()}/hook"
    open_tab(page, "setup")
    url = page.find_element(By.ID, "webhook-url")
    url.clear()
    url.send_keys(dead)
    page.find_element(By.CSS_SELECTOR, "#webhook-form button[type=submit]").click()
    wait_until(page, lambda d: "saved" in d.find_element(By.ID, "setup-result").text)
    try:
        b2b(live, "DASH-DEAD-01")
        select_order(page, "DASH-DEAD-01")

        failed = '#timeline .tl-webhook[data-state="failed"]'
        wait_until(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, failed)) == 2)
        first = page.find_elements(By.CSS_SELECTOR, failed)[0]
        attempts = first.find_elements(By.CLASS_NAME, "attempt")
        assert len(attempts) == 4  # the first try and Shipper's 3 retries
        assert all("connection failed" in a.text for a in attempts)

        live.use_receiver()
        first.find_element(By.CLASS_NAME, "tl-redeliver").click()
        delivered = '#timeline .tl-webhook[data-state="delivered"]'
        wait_until(page, lambda d: d.find_elements(By.CSS_SELECTOR, delivered))
        assert "redelivery of #" in page.find_element(By.CSS_SELECTOR, delivered).text
    finally:
        live.use_receiver()


# -- the side panel ---------------------------------------------------------------


def test_journal_shows_why_a_request_was_rejected(live, page):
    answer = live.shipper("POST", "/outbound/wms", {"warehouse_id": WAREHOUSE})
    assert answer["status"] == 400

    rejected = "#requests .req-rejected"
    wait_until(page, lambda d: d.find_elements(By.CSS_SELECTOR, rejected))
    entry = page.find_element(By.CSS_SELECTOR, rejected).text
    assert "400 · 810" in entry
    assert "doc_no: is required" in entry


def test_stock_shows_on_hand_allocated_and_sellable(live, page):
    b2b(live, "DASH-STOCK-01", lines=[("SKU-HOODIE-M", 4)])
    live.advance("DASH-STOCK-01", to="ALLOCATED")
    open_tab(page, "stock")

    def row_of_hoodie(driver) -> list[str]:
        return driver.execute_script(
            "const row = document.querySelector("
            "`#stock tr[data-key='${arguments[0]}']`);"
            "return row ? [...row.querySelectorAll('td.num')].map(c => c.textContent)"
            " : [];",
            f"{WAREHOUSE}/SKU-HOODIE-M",
        )

    expected = next(
        r
        for r in live.control("GET", "/_sim/stock?client_id=112233").json()["stock"]
        if r["warehouse_id"] == WAREHOUSE and r["sku"] == "SKU-HOODIE-M"
    )
    wanted = [
        str(expected["qty_on_hand"]),
        str(expected["qty_allocated"]),
        str(expected["qty_sellable"]),
    ]
    wait_until(page, lambda d: row_of_hoodie(d) == wanted)
    assert expected["qty_allocated"] >= 4


def test_progression_and_webhook_url_are_saved_for_the_client(live, page):
    open_tab(page, "setup")
    page.find_element(By.CSS_SELECTOR, "input[name=progression][value=auto]").click()
    delay = page.find_element(By.ID, "step-delay")
    delay.clear()
    delay.send_keys("3")
    page.find_element(By.CSS_SELECTOR, "#progression-form button[type=submit]").click()
    try:
        wait_until(
            page, lambda d: "saved" in d.find_element(By.ID, "setup-result").text
        )
        client = live.control("GET", "/_sim/clients/112233").json()
        assert client["progression"] == "auto" and client["step_delay"] == 3
    finally:
        live.control(
            "PATCH",
            "/_sim/clients/112233",
            json={"progression": "manual", "step_delay": 2},
        )


def test_keyboard_reaches_the_controls_and_opens_an_order(live, page):
    b2b(live, "DASH-KEYS-01")
    wait_in_column(page, "DASH-KEYS-01", "CREATED")

    reached = []
    for _ in range(4):
        ActionChains(page).send_keys(Keys.TAB).perform()
        active = page.switch_to.active_element
        reached.append(active.get_attribute("id") or active.get_attribute("class"))
    assert reached[:3] == ["", "client-select", "reset-button"] or reached[:3] == [
        "skip-link",
        "client-select",
        "reset-button",
    ], reached
    assert reached[3] == "card", reached  # then the board, newest card first
    outline = page.execute_script(
        "return getComputedStyle(document.activeElement).outlineStyle;"
    )
    assert outline == "solid"  # a visible focus ring

    ActionChains(page).send_keys(Keys.ENTER).perform()
    wait_until(page, lambda d: d.find_element(By.ID, "order-body").is_displayed())
    assert page.find_element(By.ID, "order-title").text.startswith(("DASH-", "ERP-"))


def test_reset_from_the_page_empties_the_board(live, page):
    b2b(live, "DASH-RESET-01")
    wait_in_column(page, "DASH-RESET-01", "CREATED")

    reset = page.find_element(By.ID, "reset-button")
    reset.click()
    assert "again" in reset.text  # a second click confirms
    reset.click()

    wait_until(page, lambda d: card(d, "DASH-RESET-01") is None)
    assert live.control("GET", "/_sim/orders").json()["orders"] == []
    live.use_receiver()


# -- how it looks -----------------------------------------------------------------


def populate_for_screenshot(live: Live) -> str:
    """A board worth looking at; answers the order to show in the panel."""
    live.control("POST", "/_sim/reset")
    live.use_receiver()
    plan = [
        ("B2C", None),
        ("B2B", "CREATED"),
        ("B2C", "ALLOCATED"),
        ("B2B", "PICKED"),
        ("B2C", "PACKED"),
        ("B2B", "66"),
        ("B2C", "SHIPPED"),
        ("B2B", "CLOSED"),
        ("B2C", "CLOSED"),
        ("B2B", "ALLOCATED"),
        ("B2C", "CREATED"),
        ("B2B", None),
    ]
    made = []
    for i, (kind, target) in enumerate(plan):
        lines = (
            [("SKU-TSHIRT-M", 2), ("SKU-CAP-01", 1)] if i % 3 else [("SKU-HOODIE-M", 1)]
        )
        if kind == "B2C":
            number = b2c(live, f"SHOPEE-2212-{800100 + i}", lines)
        else:
            number = b2b(live, f"ERP-SO-{22120 + i}", lines)
        if target:
            live.advance(number, to=target)
        made.append(number)
    cancelled = b2b(live, "ERP-SO-22199")
    live.control("POST", f"/_sim/orders/{WAREHOUSE}/{cancelled}/cancel", json={})
    live.shipper("POST", "/outbound/oms", {"warehouse_id": WAREHOUSE})
    live.shipper("POST", "/outbound/wms", {}, key="demo-key-typo")

    # The order in the panel: shipped in full, one webhook retried once.
    shown = b2c(live, "TOKOPEDIA-2212-004417", [("SKU-TSHIRT-M", 2), ("SKU-CAP-02", 1)])
    live.control(
        "PATCH",
        "/_sim/clients/112233",
        json={"webhook_url": f"http://127.0.0.1:{free_port()}/x"},
    )
    live.advance(shown, to="ALLOCATED")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        hooks = live.control("GET", f"/_sim/webhooks?order_no={shown}").json()[
            "webhooks"
        ]
        if hooks and all(h["attempts"] for h in hooks):
            break
        time.sleep(0.02)
    live.use_receiver()
    live.advance(shown, to="SHIPPED")
    return shown


def test_screenshots_at_laptop_and_projector_sizes(live, browser, tmp_path):
    shown = populate_for_screenshot(live)
    shots = {}
    for width, height in [(1366, 768), (1920, 1080)]:
        set_viewport(browser, width, height)
        browser.get("about:blank")
        browser.get(f"{live.base}/_sim/#client=112233&order={WAREHOUSE}/{shown}")
        wait_until(browser, lambda d: live_text(d) == "Live")
        wait_until(
            browser,
            lambda d: (
                len(d.find_elements(By.CSS_SELECTOR, "#timeline .tl-webhook")) >= 6
                and not d.find_elements(
                    By.CSS_SELECTOR, '.tl-webhook[data-state="pending"]'
                )
            ),
            message="timeline: "
            + browser.find_element(By.ID, "timeline").text.replace("\n", " | "),
        )
        # Nothing sticks out sideways, and the board's eight columns fit.
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth;"
        )
        assert overflow <= 0
        widths = browser.execute_script(
            "return [...document.querySelectorAll('.column')]"
            ".map(c => c.getBoundingClientRect().width);"
        )
        assert len(widths) == 8 and min(widths) > 120
        png = browser.get_screenshot_as_png()
        assert png_size(png) == (width, height)
        shots[width] = png
        keep = Path(os.environ.get("SHIPPER_SIM_SCREENSHOT_DIR") or tmp_path)
        (keep / f"dashboard-{width}x{height}.png").write_bytes(png)

    # The docs' picture is taken at laptop size; it is rewritten only when
    # asked (or missing), so that a test run leaves the work tree clean.
    if os.environ.get("SHIPPER_SIM_UPDATE_SCREENSHOT") or not DOCS_SCREENSHOT.exists():
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        DOCS_SCREENSHOT.write_bytes(shots[1366])
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
