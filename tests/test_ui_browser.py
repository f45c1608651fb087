"""The web page in a real browser: Debian's chromium driven by its chromedriver (selenium).

The emulator runs as the real CLI on a free port with the manual clock; a webhook receiver on
127.0.0.1 answers 200, or 500 for messages tagged "flaky". Every wait is a WebDriverWait on a
DOM condition. Without chromium these tests skip, unless BWE_REQUIRE_BROWSER=1 (CI), where a
missing browser is a failure. With BWE_SCREENSHOTS=DIR the screenshots go to DIR (that is how
docs/screenshots/ is made); otherwise to a temporary directory.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support import SUITE_ERA

pytestmark = pytest.mark.browser

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "emulator" / "scenarios" / "library").glob("*.yaml"))
CHROMIUM = os.environ.get("BWE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("BWE_CHROMEDRIVER", "/usr/bin/chromedriver")
REQUIRED = os.environ.get("BWE_REQUIRE_BROWSER") == "1"
WAIT = 30  # seconds, only ever waited out by a failure: a loaded CI machine can take several
# A request to the emulator (an advance delivers every callback due before it answers): a bound
# on something that ends, not a measure of how fast a busy machine answers.
REQUEST_TIMEOUT = 60
ACCOUNT = "9900000"
OURS = "+15554443333"
HANDSET = "+15552221111"


def _missing_browser() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{path} not found: install Debian's {package} (apt-get install chromium chromium-driver)"
    return None


# -- the webhook receiver ----------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    # The emulator opens up to 64 connections at once to one webhook (docs/callbacks.md, 'Time,
    # scale and shutdown'); with http.server's backlog of 5 one of them could go unaccepted
    # until its attempt timed out (10 s), and an advance that delivers 57 callbacks took 10 s.
    request_queue_size = 128


class Webhook:
    """Answers 200, or 500 when the event's message is tagged "flaky"."""

    def __init__(self) -> None:
        events: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                events.extend(body)
                flaky = any(e.get("message", {}).get("tag") == "flaky" for e in body)
                self.send_response(500 if flaky else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.events = events
        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callbacks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the emulator ------------------------------------------------------------------------------


class Emulator:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def request(self, method: str, path: str, body: Any = None, auth: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", "Basic " + base64.b64encode(b"user:pass").decode())
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT) as resp:
            return json.loads(resp.read() or b"null")

    def upload(self, media_id: str, content: bytes, content_type: str, account: str = ACCOUNT) -> str:
        url = f"{self.base_url}/api/v2/users/{account}/media/{media_id}"
        req = urllib.request.Request(url, data=content, method="PUT")
        req.add_header("Content-Type", content_type)
        req.add_header("Authorization", "Basic " + base64.b64encode(b"user:pass").decode())
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT):
            pass
        return url

    def send(self, to: list[str], text: str, tag: str | None = None, account: str = ACCOUNT, **extra: Any) -> dict:
        body = {"applicationId": "ui-app", "from": OURS, "to": to, "text": text, **extra}
        if tag is not None:
            body["tag"] = tag
        return self.request("POST", f"/api/v2/users/{account}/messages", body, auth=True)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def start_emulator(webhook: Webhook, start_cli: Callable[..., Any]) -> Callable[..., Emulator]:
    def start(*args: str) -> Emulator:
        emulator = start_cli("--clock", "manual", "--callback-url", webhook.url, *args)
        return Emulator(emulator.base_url)

    return start


# -- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    missing = _missing_browser()
    if missing:
        if REQUIRED:
            pytest.fail(f"BWE_REQUIRE_BROWSER=1 but {missing}", pytrace=False)
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="bwe-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(driver: Any, start_emulator: Any) -> Iterator[Any]:
    # Torn down before the emulator stops (it depends on start_emulator), so the page never
    # polls a stopped emulator.
    driver.set_window_size(1280, 900)
    driver.get_log("browser")  # start with an empty log
    yield driver
    # Script errors and anything blocked by the page's own security policy; not HTTP errors
    # ("network"), which some tests cause on purpose (a refused request, a missing thumbnail).
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and e.get("source") != "network"]
    driver.get("about:blank")
    assert not errors, errors


@pytest.fixture
def shots(tmp_path: Path) -> Callable[[Any, str], None]:
    target = Path(os.environ.get("BWE_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)

    def shoot(driver: Any, name: str) -> None:
        # Full height of the page, as a reader of the docs would scroll through it.
        height = driver.execute_script("return document.documentElement.scrollHeight")
        width = driver.get_window_size()["width"]
        driver.set_window_size(width, max(600, min(height + 140, 2400)))
        assert driver.save_screenshot(str(target / name))

    return shoot


def wait(driver: Any, condition: Callable[[Any], Any], message: str) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # The page is live: an element may be drawn again (stale) or not be there yet (IndexError).
    ignored = [StaleElementReferenceException, IndexError]
    return WebDriverWait(driver, WAIT, ignored_exceptions=ignored).until(condition, message)


def css(driver: Any, selector: str) -> list[Any]:
    return driver.find_elements("css selector", selector)


def click(driver: Any, selector: str) -> None:
    """Click once the element is there; the page re-draws on every change, so retry a stale one."""

    def attempt(d: Any) -> bool:
        found = css(d, selector)
        if not found or not found[0].is_enabled():
            return False
        found[0].click()
        return True

    wait(driver, attempt, f"nothing clickable at {selector}")


def choose(driver: Any, key: str) -> bool:
    """Choose a conversation and wait until the page shows its thread (the list marks it chosen
    in the same drawing), clicking again should a re-drawn list have swallowed the click. False
    when it is no longer on the list (a filter applied meanwhile)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    clicked = -1.0

    def shown(d: Any) -> str | bool:
        nonlocal clicked
        if css(d, f'.conversation.selected[data-key="{key}"]'):
            return "shown"
        found = css(d, f'.conversation[data-key="{key}"]')
        if not found:
            return "gone"
        if time.monotonic() - clicked > 1:  # once, then again each second while not shown
            found[0].click()
            clicked = time.monotonic()
        return False

    waiting = WebDriverWait(driver, WAIT, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException])
    return waiting.until(shown, f"conversation {key} not shown") == "shown"


def bubble_css(message_id: str) -> str:
    return f'.bubble[data-message-id="{message_id}"]'


def open_timeline(driver: Any, message_id: str) -> None:
    click(driver, f"{bubble_css(message_id)} details.callbacks summary")
    wait(driver, lambda d: css(d, f"{bubble_css(message_id)} details.callbacks[open]"), "timeline did not open")


def load(driver: Any, emulator: Emulator, path: str = "/") -> None:
    driver.get(emulator.base_url + path)
    wait(driver, lambda d: d.find_element("tag name", "body").get_attribute("data-loaded") == "true", "page did not load")


# -- the tests ---------------------------------------------------------------------------------


def test_send_advance_and_reply(page, start_emulator, webhook, shots):
    emu = start_emulator()
    load(page, emu)
    assert page.find_element("id", "clock-mode").text == "manual"

    # Message text is the app's (and so an attacker's): it must show as text, never as markup.
    text = "Your code is <b>1234</b> <img src=x onerror=\"document.title='pwned'\">"
    sent = emu.send([HANDSET], text, tag="login-code")
    bubble = bubble_css(sent["id"])
    wait(page, lambda d: any(e.text == text for e in css(d, f"{bubble} .text")), "sent message did not appear")
    assert not css(page, f"{bubble} .text b, {bubble} .text img")
    assert page.title == "Bandwidth emulator"
    assert css(page, f'{bubble} .recipient[data-to="{HANDSET}"]')[0].get_attribute("data-status") == "QUEUED"
    assert "1 segment" in css(page, f"{bubble} .segments")[0].text
    assert "login-code" in css(page, f"{bubble} .tag")[0].text

    open_timeline(page, sent["id"])
    wait(page, lambda d: "first attempt at" in css(d, f"{bubble} .callback .next-attempt")[0].text, "no planned attempt")

    click(page, '#advance button[data-seconds="60"]')
    wait(
        page,
        lambda d: css(d, f'{bubble} .recipient[data-to="{HANDSET}"]')[0].get_attribute("data-status") == "DELIVERED",
        "recipient never became delivered",
    )
    wait(page, lambda d: css(d, f'{bubble} .callback[data-state="delivered"] .attempt.ok'), "no delivered attempt")
    assert "HTTP 200" in css(page, f"{bubble} .attempt .outcome")[0].text
    assert [e["type"] for e in webhook.events] == ["message-delivered"]

    # Reply as the handset from the form, which the selected conversation filled in.
    assert page.find_element("id", "inbound-from").get_attribute("value") == HANDSET
    assert page.find_element("id", "inbound-to").get_attribute("value") == OURS
    page.find_element("id", "inbound-text").send_keys("Thanks! See you at 8 <3 & <i>bring</i> the menu")
    click(page, "#inbound-send")
    inbound = '.bubble[data-direction="in"]'
    wait(
        page,
        lambda d: any(e.text == "Thanks! See you at 8 <3 & <i>bring</i> the menu" for e in css(d, f"{inbound} .text")),
        "inbound reply did not appear",
    )
    # Both messages sit in one conversation: your number and the handset.
    assert len(css(page, "#conversation-list .conversation")) == 1
    assert len(css(page, "#thread .bubble")) == 2

    click(page, "#advance-next")
    wait(page, lambda d: any(e["type"] == "message-received" for e in webhook.events), "no message-received callback")
    received = webhook.events[-1]
    assert received["message"]["text"] == "Thanks! See you at 8 <3 & <i>bring</i> the menu"
    assert received["to"] == OURS and received["message"]["from"] == HANDSET
    page.execute_script("document.activeElement.blur()")
    shots(page, "conversation.png")


def test_retries_then_exhausted_stand_out(page, start_emulator, webhook, shots):
    emu = start_emulator()
    load(page, emu)
    ok = emu.send([HANDSET], "Your table is ready", tag="flaky")
    failed = emu.send(["+15550104720"], "This number cannot take texts")
    wait(page, lambda d: len(css(d, "#conversation-list .conversation")) == 2, "two conversations expected")
    click(page, f'.conversation[data-key="{ACCOUNT}|{OURS}|{HANDSET}"]')
    bubble = bubble_css(ok["id"])
    open_timeline(page, ok["id"])

    click(page, '#advance button[data-seconds="60"]')
    # The first attempt (at +1 s) gets 500; the retry one minute after it is planned.
    wait(page, lambda d: len(css(d, f"{bubble} .attempt.bad")) == 1, "a failed attempt expected")
    assert css(page, f"{bubble} .attempt .outcome")[0].text == "HTTP 500"
    assert "next retry at" in css(page, f"{bubble} .next-attempt")[0].text
    assert not css(page, ".bubble.has-exhausted")

    click(page, '#advance button[data-seconds="86400"]')
    wait(page, lambda d: css(d, f'{bubble} .callback[data-state="exhausted"]'), "callback never exhausted")
    assert css(page, f"{bubble}.has-exhausted")
    note = css(page, f"{bubble} .exhausted-note")[0].text
    assert "gave up after 10 attempts" in note
    assert len(css(page, f"{bubble} .attempt.bad")) == 10
    assert not css(page, f"{bubble} .next-attempt")
    # The recipient itself was delivered: only the webhook failed.
    assert css(page, f"{bubble} .recipient")[0].get_attribute("data-status") == "DELIVERED"
    shots(page, "timeline-exhausted.png")

    page.set_window_size(1280, 900)
    click(page, f'.conversation[data-key="{ACCOUNT}|{OURS}|+15550104720"]')
    failed_bubble = bubble_css(failed["id"])
    wait(
        page,
        lambda d: css(d, f"{failed_bubble} .recipient")[0].get_attribute("data-status") == "FAILED",
        "magic number did not fail",
    )
    assert css(page, f"{failed_bubble} .error-code")[0].text == "error 4720"
    assert css(page, f"{failed_bubble} .error-description")[0].text


def test_holds_duplicates_and_credentials_in_the_timeline(page, start_emulator, webhook, tmp_path):
    scenario = tmp_path / "delivery.yaml"
    scenario.write_text(
        "name: delivery-details\n"
        f"era: '{SUITE_ERA}'\n"  # message-sending, which this test holds on, ends on 2027-01-06
        "applications:\n"
        "  - id: '*'\n"
        f"    statusCallbackUrl: {webhook.url}\n"
        "    callbackCredentials: {username: hook, password: secret}\n"
        "    ordering: hold\n"
        "    duplicates: 1\n",
        encoding="utf-8",
    )
    emu = start_emulator("--scenario", str(scenario))
    held = emu.send([HANDSET], "A picture", tag="flaky", media=["https://example.com/a.jpg"])
    twice = emu.send(["+15553334444"], "Delivered twice")
    emu.request("POST", "/_emulator/clock/advance", {"seconds": 5})
    load(page, emu)
    # The era the scenario pins shows beside the clock.
    era = page.find_element("id", "clock-era")
    assert era.text == f"Bandwidth {SUITE_ERA} (pinned)"
    assert "73 h" in era.get_attribute("title") and "message-sending" in era.get_attribute("title")

    click(page, f'.conversation[data-key="{ACCOUNT}|{OURS}|{HANDSET}"]')
    open_timeline(page, held["id"])
    # message-sending keeps failing, so message-delivered waits for it.
    note = wait(page, lambda d: css(d, f'{bubble_css(held["id"])} .callback[data-type="message-delivered"] .held'), "no hold")
    assert note[0].text == f"held (ordering: hold) until message-sending → {HANDSET} is delivered"

    click(page, f'.conversation[data-key="{ACCOUNT}|{OURS}|+15553334444"]')
    open_timeline(page, twice["id"])
    bubble = bubble_css(twice["id"])
    rows = wait(page, lambda d: css(d, f"{bubble} .attempt"), "no attempts")
    assert [r.find_element("css selector", ".attempt-n").text for r in rows] == ["#1", "#1"]
    assert "duplicate" not in rows[0].text and "duplicate" in rows[1].text
    assert all("auth" in r.find_element("css selector", ".outcome").text for r in rows)


def test_realtime_clock_runs_without_buttons(page, start_emulator, webhook):
    emu = start_emulator("--clock", "realtime", "--time-scale", "600")  # the last --clock wins
    load(page, emu)
    assert page.find_element("id", "clock-mode").text == "realtime ×600"
    assert not page.find_element("id", "advance").is_displayed()
    before = page.find_element("id", "clock-now").text
    wait(page, lambda d: d.find_element("id", "clock-now").text != before, "the clock does not run")
    sent = emu.send([HANDSET], "No buttons needed")
    wait(
        page,
        lambda d: [e.get_attribute("data-status") for e in css(d, f"{bubble_css(sent['id'])} .recipient")] == ["DELIVERED"],
        "not delivered on the realtime clock",
    )


def test_reply_in_a_group_that_texted_two_of_your_numbers(page, start_emulator):
    emu = start_emulator()
    mine = ["+15554443333", "+15554443334"]
    emu.request("POST", "/_emulator/inbound", {"from": "+15557770001", "to": mine, "text": "Look at this"})
    load(page, emu)
    wait(page, lambda d: len(css(d, "#conversation-list .conversation")) == 2, "one conversation per number of yours")
    for ours in mine:
        other = next(n for n in mine if n != ours)
        click(page, f'.conversation[data-key="{ACCOUNT}|{ours}|{",".join(sorted([other, "+15557770001"]))}"]')
        # Both conversations share the handset, so wait on the field that tells them apart.
        wait(
            page,
            lambda d, ours=ours, other=other: d.find_element("id", "inbound-to").get_attribute("value") == f"{ours} {other}",
            "the reply does not go to this number of yours first",
        )
        assert page.find_element("id", "inbound-from").get_attribute("value") == "+15557770001"


def test_filters_and_reset(page, start_emulator):
    emu = start_emulator()
    first = emu.send([HANDSET], "for account one", tag="alpha")
    second = emu.send(["+15553334444"], "for account two", tag="beta", account="7700000")
    third = emu.send(["+15550104720"], "will fail", tag="alpha")
    emu.request("POST", "/_emulator/clock/advance", {"seconds": 5})
    load(page, emu)
    wait(page, lambda d: len(css(d, "#conversation-list .conversation")) == 3, "three conversations expected")

    def shown_ids(d: Any) -> set[str] | None:
        ids = set()
        keys = [c.get_attribute("data-key") for c in css(d, "#conversation-list .conversation")]
        for key in keys:
            if not choose(d, key):
                return None  # a filter just applied took it off the list: read the new one
            ids.update(b.get_attribute("data-message-id") for b in css(d, "#thread .bubble"))
        return ids

    from selenium.webdriver.support.ui import Select

    Select(page.find_element("id", "filter-tag")).select_by_value("alpha")
    wait(page, lambda d: shown_ids(d) == {first["id"], third["id"]}, "tag filter")
    Select(page.find_element("id", "filter-state")).select_by_value("FAILED")
    wait(page, lambda d: shown_ids(d) == {third["id"]}, "state filter")
    assert "1 of 3 messages match" in page.find_element("id", "filter-summary").text
    # Filters live in the URL, so a view can be shared.
    assert "tag=alpha" in page.current_url and "state=FAILED" in page.current_url

    Select(page.find_element("id", "filter-tag")).select_by_value("")
    Select(page.find_element("id", "filter-state")).select_by_value("")
    Select(page.find_element("id", "filter-account")).select_by_value("7700000")
    wait(page, lambda d: shown_ids(d) == {second["id"]}, "account filter")
    Select(page.find_element("id", "filter-account")).select_by_value("")
    # Unfiltered first: the number filter below shows what the account filter showed.
    wait(page, lambda d: len(css(d, "#conversation-list .conversation")) == 3, "account filter not cleared")
    page.find_element("id", "filter-number").send_keys("333444")
    wait(page, lambda d: shown_ids(d) == {second["id"]}, "number filter")
    page.find_element("id", "filter-number").clear()
    page.find_element("id", "filter-number").send_keys(" ")  # an input event with an empty filter
    wait(page, lambda d: len(shown_ids(d)) == 3, "filters cleared")

    # Reset one account, then everything; the page asks first.
    Select(page.find_element("id", "filter-account")).select_by_value("7700000")
    # The button is named once the filtered page is read (app.js, readAll): wait for it.
    wait(page, lambda d: d.find_element("id", "reset").text == "Reset account 7700000", "reset button not named")
    click(page, "#reset")
    wait(page, lambda d: d.switch_to.alert, "no confirmation").accept()
    wait(page, lambda d: not css(d, "#thread .bubble"), "account not reset")
    assert emu.request("GET", "/_emulator/messages?accountId=7700000")["messages"] == []
    assert len(emu.request("GET", "/_emulator/messages")["messages"]) == 2
    Select(page.find_element("id", "filter-account")).select_by_value("")
    # The account's page is empty, so "no conversations" shows already: wait for the whole
    # page (the other account's two) before resetting, or the wait below proves nothing.
    wait(page, lambda d: len(css(d, "#conversation-list .conversation")) == 2, "account filter not cleared")
    click(page, "#reset")
    wait(page, lambda d: d.switch_to.alert, "no confirmation").accept()
    wait(page, lambda d: d.find_element("id", "no-conversations").is_displayed(), "not reset")
    assert emu.request("GET", "/_emulator/messages")["messages"] == []

    # A refused inbound message: the emulator's explanation, shown as the page got it. The
    # fields still hold what the last conversation shown filled in: typed over, not after it.
    page.find_element("id", "inbound-from").clear()
    page.find_element("id", "inbound-from").send_keys(HANDSET)
    page.find_element("id", "inbound-to").clear()
    page.find_element("id", "inbound-to").send_keys("my-number")
    click(page, "#inbound-send")
    notice = wait(page, lambda d: d.find_element("id", "notice") if d.find_element("id", "notice").is_displayed() else None, "no notice")
    assert notice.text == "invalid inbound message\n'to' is required: one of your numbers in E.164, or a list of them"
    assert emu.request("GET", "/_emulator/messages")["messages"] == []


def test_scenario_view_and_narrow_window(page, start_emulator, webhook, shots, tmp_path):
    scenario = tmp_path / "demo.yaml"
    scenario.write_text(
        "name: ui-demo\n"
        "description: Flaky webhook for the first hour\n"
        "applications:\n"
        "  - id: ui-app\n"
        f"    statusCallbackUrl: {webhook.url}\n"
        "    numbers: ['+15554443333']\n"
        "    retrySchedule: [0, 60, 3600]\n",
        encoding="utf-8",
    )
    emu = start_emulator("--scenario", str(scenario))
    message = emu.send([HANDSET, "+15553334444"], "Dinner at 8 — menu attached", media=["https://example.com/menu.pdf"])
    load(page, emu, "/_emulator/ui")
    wait(page, lambda d: d.find_element("id", "scenario-name").text == "ui-demo", "scenario name not shown")
    bubble = bubble_css(message["id"])
    wait(page, lambda d: css(d, bubble), "group message did not appear")
    assert "MMS" not in css(page, f"{bubble} .bubble-meta")[0].text.split()  # a group, not a plain MMS
    assert "GROUP" in css(page, f"{bubble} .bubble-meta")[0].text
    link = css(page, f"{bubble} a.media")[0]
    assert link.get_attribute("href") == "https://example.com/menu.pdf" and link.text == "menu.pdf"
    assert len(css(page, f"{bubble} .recipient")) == 2

    click(page, "#scenario-name")
    wait(page, lambda d: "name: ui-demo" in d.find_element("id", "scenario-text").text, "scenario YAML not shown")
    assert "retrySchedule:" in page.find_element("id", "scenario-text").text
    shots(page, "scenario.png")
    click(page, "#scenario-tab-json")
    wait(page, lambda d: '"name": "ui-demo"' in d.find_element("id", "scenario-text").text, "scenario JSON not shown")
    click(page, "#scenario-close")
    wait(page, lambda d: not d.find_element("id", "scenario-dialog").is_displayed(), "dialog did not close")

    # A narrow window: one column, nothing wider than the screen.
    page.set_window_size(400, 900)
    click(page, '#advance button[data-seconds="3600"]')
    wait(page, lambda d: all(e.get_attribute("data-status") == "DELIVERED" for e in css(d, f"{bubble} .recipient")), "not delivered")
    open_timeline(page, message["id"])
    overflow = page.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"page is {overflow}px wider than a narrow window"
    shots(page, "narrow.png")


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_media_from_the_store_shows_as_thumbnails(page, start_emulator, shots):
    emu = start_emulator()
    stored = emu.upload("photos/sunset.png", png(96, 64, (242, 140, 40)), "image/png")
    missing = stored.replace("sunset.png", "never-uploaded.png")
    message = emu.send([HANDSET], "Tonight's view", media=[stored, missing, "https://example.com/menu.pdf"])
    load(page, emu)
    bubble = bubble_css(message["id"])
    wait(
        page,
        lambda d: d.execute_script(
            "const img = document.querySelector(arguments[0]); return img && img.complete && img.naturalWidth", f"{bubble} img"
        )
        == 96,
        "the stored picture did not load as a thumbnail",
    )
    assert css(page, f"{bubble} img")[0].get_attribute("src").endswith("/_emulator/ui/media/9900000/photos/sunset.png")
    # Not in the store: its name instead of a broken image.
    wait(page, lambda d: len(css(d, f"{bubble} img")) == 1, "a broken thumbnail stayed")
    assert [e.text for e in css(page, f"{bubble} .media-name")] == ["never-uploaded.png (not stored)"]
    assert css(page, f"{bubble} a.media")[-1].get_attribute("href") == "https://example.com/menu.pdf"
    page.set_window_size(900, 700)
    shots(page, "media.png")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_page_shows_everything_under_each_shipped_scenario(page, start_emulator, scenario):
    """Whatever a shipped scenario does (failures, retries, out-of-order or duplicate callbacks,
    scheduled inbound traffic, auto-replies, API faults), every message is on the page."""
    emu = start_emulator("--scenario", str(scenario))
    for to, extra in (
        ([HANDSET], {}),
        (["+15557770002"], {"text": "hello"}),  # a handset that answers in some scenarios
        ([HANDSET, "+15550104720"], {"media": ["https://example.com/a.jpg"]}),
    ):
        try:
            emu.send(to, extra.pop("text", "Hello from the test"), **extra)
        except urllib.error.HTTPError as exc:  # rate limits and API faults are part of some scenarios
            assert exc.code in (429, 500, 503), exc
    emu.request("POST", "/_emulator/inbound", {"from": HANDSET, "to": OURS, "text": "a reply"})
    emu.request("POST", "/_emulator/clock/advance", {"seconds": 25 * 3600})
    expected = {m["id"] for m in emu.request("GET", "/_emulator/messages")["messages"]}
    name = emu.request("GET", "/_emulator/scenario")["name"]

    load(page, emu)
    wait(page, lambda d: d.find_element("id", "scenario-name").text == name, "scenario name not shown")
    total = f"{len(expected)} message{'' if len(expected) == 1 else 's'}"
    wait(page, lambda d: d.find_element("id", "filter-summary").text == total, f"expected {total}")
    shown = set()
    for key in [c.get_attribute("data-key") for c in css(page, "#conversation-list .conversation")]:
        click(page, f'.conversation[data-key="{key}"]')
        wait(page, lambda d, key=key: css(d, f'.conversation.selected[data-key="{key}"]'), "conversation not selected")
        shown.update(b.get_attribute("data-message-id") for b in css(page, "#thread .bubble"))
    assert shown == expected


def test_rbm_card_carousel_and_tapping_a_suggestion(page, start_emulator, webhook, shots):
    """RBM content shows as a handset shows it; tapping a chip reaches the app's inbound webhook."""
    emu = start_emulator()
    load(page, emu)
    agent, app = "BandwidthRBM", "ui-app"
    confirm = {"type": "REPLY", "text": "Confirm", "postbackData": "Y29uZmlybQ=="}
    call = {"type": "DIAL_PHONE", "text": "Call us", "postbackData": "Y2FsbA==", "phoneNumber": OURS}
    card = {
        "orientation": "VERTICAL",
        "cardContent": {"title": "Table for two", "description": "Tonight at 8 pm", "suggestions": [confirm]},
        "suggestions": [call],
    }
    carousel = {
        "cardWidth": "SMALL",
        "cardContents": [{"title": "Pasta <b>al forno</b>"}, {"title": "Pizza", "description": "Margherita"}],
    }

    def send(content: dict[str, Any], to: str = HANDSET) -> str:
        body = {
            "to": to,
            "channelList": [
                {"from": agent, "applicationId": app, "channel": "RBM", "content": content},
                {"from": OURS, "applicationId": app, "channel": "SMS", "content": {"text": "Table for two tonight"}},
            ],
        }
        return str(emu.request("POST", f"/api/v2/users/{ACCOUNT}/messages/multiChannel", body, auth=True)["data"]["id"])

    card_id = send(card)
    carousel_id = send(carousel)
    fallback_id = send(card, to="+15550201234")  # never RCS-capable: the SMS goes out
    emu.request("POST", "/_emulator/clock/advance", {"seconds": 5})

    # The page chooses the newest conversation it reads first, and the three sends may reach it
    # as one change (the fallback's conversation is then the newest): choose the card's.
    click(page, f'.conversation[data-key="{ACCOUNT}|{agent}|{HANDSET}"]')
    wait(page, lambda d: css(d, f"{bubble_css(card_id)} .rbm-card"), "the card did not appear")
    card_bubble = bubble_css(card_id)

    def shows(selector: str, texts: list[str]) -> None:
        # The page is live: a bubble is drawn again as its callbacks are attempted, so read it in a wait.
        wait(page, lambda d: [e.text for e in css(d, selector)] == texts, f"{selector} does not show {texts}")

    shows(f"{card_bubble} .rbm-title", ["Table for two"])
    shows(f"{card_bubble} .rbm-description", ["Tonight at 8 pm"])
    shows(f"{card_bubble} .suggestion", ["Confirm", "Call us · call"])
    shows(f"{card_bubble} .chip.channel", ["via RBM"])
    carousel_bubble = bubble_css(carousel_id)
    shows(f"{carousel_bubble} .rbm-carousel .rbm-title", ["Pasta <b>al forno</b>", "Pizza"])
    assert not css(page, f"{carousel_bubble} .rbm-title b")

    # The handset reads it, then taps "Confirm".
    click(page, f"{card_bubble} .mark-read")
    wait(page, lambda d: css(d, f"{card_bubble} .chip.read"), "no read receipt shown")
    click(page, f'{card_bubble} .suggestion[data-suggestion="Confirm"]')
    wait(page, lambda d: any("Confirm" in e.text for e in css(d, ".bubble[data-direction='in'] .rbm-answer")), "tap not shown")
    emu.request("POST", "/_emulator/clock/advance", {"seconds": 1})
    wait(page, lambda d: any(e["type"] == "suggestion-response" for e in webhook.events), "no suggestion-response")
    tapped = next(e for e in webhook.events if e["type"] == "suggestion-response")
    assert tapped["message"]["suggestionResponse"] == {"text": "Confirm", "postbackData": "Y29uZmlybQ==", "pairedMessageId": card_id}
    assert tapped["to"] == agent and tapped["message"]["from"] == HANDSET
    assert any(e["type"] == "message-read" and e["message"]["id"] == card_id for e in webhook.events)

    # The agent is no number to text: its conversation offers only the RBM answer form.
    assert not page.find_element("id", "inbound").is_displayed()
    # Typing and sharing a location from the handset's RBM form.
    page.find_element("id", "rbm-reply-text").send_keys("See you at 8")
    click(page, "#rbm-reply-send")
    # Stored before the clock moves, so its message-received goes out with the advance below.
    wait(page, lambda d: any(e.text == "See you at 8" for e in css(d, ".bubble[data-direction='in'] .text")), "reply not shown")
    click(page, "#rbm-share-location")
    wait(page, lambda d: any("Shared location" in e.text for e in css(d, ".rbm-answer")), "location not shown")
    emu.request("POST", "/_emulator/clock/advance", {"seconds": 1})
    wait(page, lambda d: any(e["type"] == "requested-location-response" for e in webhook.events), "no location callback")
    typed = [e for e in webhook.events if e["type"] == "message-received"]
    assert [(e["message"]["text"], e["message"]["channel"]) for e in typed] == [("See you at 8", "RBM")]
    located = next(e for e in webhook.events if e["type"] == "requested-location-response")
    assert located["message"]["locationResponse"] == {"latitude": "37.7749", "longitude": "-122.4194"}

    # The fallback shows as the SMS it became, with where it fell back from.
    click(page, "#conversation-list .conversation:not(.selected)")
    wait(page, lambda d: css(d, f"{bubble_css(fallback_id)} .chip.channel"), "the fallback message did not appear")
    chip = css(page, f"{bubble_css(fallback_id)} .chip.channel")[0].text
    assert chip == "via SMS (fallback from RBM)"
    assert not css(page, f"{bubble_css(fallback_id)} .suggestion")
    assert page.find_element("id", "inbound").is_displayed() and not page.find_element("id", "rbm-reply").is_displayed()
    click(page, "#conversation-list .conversation:not(.selected)")
    wait(page, lambda d: css(d, f"{card_bubble} .rbm-card"), "back to the RBM conversation")
    page.execute_script("document.activeElement.blur(); document.getElementById('thread').scrollTop = 0")
    shots(page, "rbm-conversation.png")

# -- another origin (docs/security.md) ---------------------------------------------------------


class AttackerPage:
    """A page on another origin (127.0.0.1, another port) that tries to drive the emulator the
    ways a browser allows without asking it: fetch with mode no-cors and a text/plain body
    (no CORS preflight), and a text/plain form post into an iframe."""

    def __init__(self, emulator_url: str) -> None:
        form_name = json.dumps('{"from":"+15552221111","to":"+15554443333","text":"FORM","x":"')
        page = f"""<!doctype html><html><head><title>loading</title></head><body>
<iframe name="sink" id="sink"></iframe>
<form id="form" method="POST" enctype="text/plain" target="sink" action="{emulator_url}/_emulator/inbound">
<input type="hidden" id="field" value='"}}'></form>
<script>
const emulator = {json.dumps(emulator_url)};
document.getElementById("field").name = {form_name};
Promise.allSettled([
  fetch(emulator + "/_emulator/inbound", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
    body: JSON.stringify({{from: "+15552221111", to: "+15554443333", text: "STOP"}})}}),
  fetch(emulator + "/_emulator/clock/advance", {{method: "POST", mode: "no-cors",
    headers: {{"Content-Type": "text/plain"}}, body: '{{"seconds": 3600}}'}}),
]).then(() => {{
  document.title = "fetched";
  document.getElementById("sink").onload = () => {{ document.title = "done"; }};
  document.getElementById("form").submit();
}});
</script></body></html>""".encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_page_on_another_origin_cannot_inject_an_inbound_message_or_move_the_clock(driver, start_emulator):
    emulator = start_emulator()
    clock = emulator.request("GET", "/_emulator/clock")
    attacker = AttackerPage(emulator.base_url)
    try:
        driver.get(attacker.url)
        # Every attempt has had its answer: the fetches settled, then the form's answer loaded.
        wait(driver, lambda d: d.title == "done", "the attacker page did not finish its attempts")
    finally:
        driver.get("about:blank")
        attacker.close()
    assert emulator.request("GET", "/_emulator/messages")["messages"] == []
    assert emulator.request("GET", "/_emulator/clock")["now"] == clock["now"]


def test_with_a_control_token_the_page_opens_with_the_token_once_then_works(page, start_emulator, webhook):
    emu = start_emulator("--control-token", "s3cret")
    try:
        page.get(emu.base_url + "/")
        assert "unauthorized" in page.find_element("tag name", "body").text
        load(page, emu, "/?token=s3cret")
        assert "token" not in page.current_url  # the address no longer shows it
        # The page's own requests carry the cookie: it lists, and it moves the clock.
        sent = emu.send([HANDSET], "with a token")
        bubble = bubble_css(sent["id"])
        wait(page, lambda d: any(e.text == "with a token" for e in css(d, f"{bubble} .text")), "message did not appear")
        click(page, '#advance button[data-seconds="60"]')
        wait(
            page,
            lambda d: css(d, f'{bubble} .recipient[data-to="{HANDSET}"]')[0].get_attribute("data-status") == "DELIVERED",
            "the page could not advance the clock",
        )
    finally:
        page.delete_all_cookies()


def test_replay_button_delivers_a_callback_again(page, start_emulator, webhook):
    emu = start_emulator()
    load(page, emu)
    sent = emu.send([HANDSET], "Your order shipped")
    bubble = bubble_css(sent["id"])
    wait(page, lambda d: css(d, bubble), "sent message did not appear")
    open_timeline(page, sent["id"])
    # Nothing to replay before the first attempt.
    assert not css(page, f"{bubble} .callback button.replay")

    click(page, '#advance button[data-seconds="60"]')
    wait(page, lambda d: css(d, f'{bubble} .callback[data-state="delivered"] .attempt.ok'), "no delivered attempt")
    assert [e["type"] for e in webhook.events] == ["message-delivered"]

    click(page, f"{bubble} .callback button.replay")
    wait(page, lambda d: css(d, f"{bubble} .attempt.replay"), "no replay attempt in the timeline")
    assert len(webhook.events) == 2 and webhook.events[1] == webhook.events[0]
    assert "replay" in css(page, f"{bubble} .attempt.replay .outcome")[0].text
    assert len(css(page, f"{bubble} .attempt")) == 2
    callback = emu.request("GET", f"/_emulator/callbacks?messageId={sent['id']}")["callbacks"][0]
    assert callback["state"] == "delivered" and [a["replay"] for a in callback["attempts"]] == [False, True]


def test_the_page_updates_live_from_the_event_stream(page, start_emulator, webhook):
    """Messages sent, callbacks attempted and conversations started after the page opened show up
    without a reload: the event stream names what changed and the page reads those rows only."""
    emu = start_emulator()
    # More conversations than one page holds.
    numbers = [f"+1555600{n:04d}" for n in range(55)]
    for number in numbers:
        emu.send([number], f"hello {number}")
    load(page, emu)
    page.execute_script("window.notReloaded = true")
    wait(page, lambda d: len(css(d, "#conversation-list .conversation")) == 50, "one page of 50 conversations")
    click(page, "#more-conversations")
    wait(page, lambda d: len(css(d, "#conversation-list .conversation")) == 55, "the next page")
    assert not page.find_element("id", "more-conversations").is_displayed()

    # A new conversation, sent through the API: it appears on top, chosen conversation unchanged.
    chosen = css(page, "#conversation-list .conversation.selected")[0].get_attribute("data-key")
    sent = emu.send([HANDSET], "sent after the page opened")
    first = f'#conversation-list li:first-child .conversation[data-key="{ACCOUNT}|{OURS}|{HANDSET}"]'
    wait(page, lambda d: css(d, first), "the new conversation did not appear on top")
    assert len(css(page, "#conversation-list .conversation")) == 56
    assert css(page, "#conversation-list .conversation.selected")[0].get_attribute("data-key") == chosen

    # Its messages, and their statuses as callbacks are attempted (clock moved by the API).
    click(page, first)
    wait(page, lambda d: css(d, bubble_css(sent["id"])), "the new message did not show")
    second = emu.send([HANDSET], "and another one")
    wait(page, lambda d: css(d, bubble_css(second["id"])), "a message to the open conversation did not show")
    emu.request("POST", "/_emulator/clock/advance", {"seconds": 60})
    status = f'{bubble_css(second["id"])} .recipient[data-to="{HANDSET}"]'
    wait(page, lambda d: css(d, status)[0].get_attribute("data-status") == "DELIVERED", "status did not change")

    assert page.execute_script("return window.notReloaded") is True
    fetched = page.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    # Told by the event stream (an open stream is in no resource timing yet), it read the changed
    # rows by name, and never a whole list.
    assert any(f"/_emulator/ui/messages?id={second['id']}" in url for url in fetched)
    assert not any("/_emulator/messages" in url or "/_emulator/callbacks" in url for url in fetched)

    # Searching the text happens on the server too.
    page.find_element("id", "filter-q").send_keys("ANOTHER")
    wait(page, lambda d: len(css(d, "#conversation-list .conversation")) == 1, "text search")
    wait(page, lambda d: [b.get_attribute("data-message-id") for b in css(d, "#thread .bubble")] == [second["id"]], "search")
    assert "q=ANOTHER" in page.current_url
    assert "1 of 57 messages match" in page.find_element("id", "filter-summary").text
