"""How to: test your own webhook handler end to end with an inbound message.

``my_app`` below stands in for your application: a webhook that answers "STOP" with a
confirmation, sent through Bandwidth's API with the official SDK. It is a plain WSGI app
(the shape of a Flask or Django view) served on 127.0.0.1; point the emulator's scenario
at its URL and drive it like a handset would.
"""

import json
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from bandwidth import ApiClient, Configuration, MessageRequest, MessagesApi

OUR_NUMBER = "+15554443333"
HANDSET = "+15552221111"
APPLICATION = "my-app"


class OptOutApp:
    """The application under test: Bandwidth's inbound and status webhooks."""

    def __init__(self, bandwidth_api_url: str, account_id: str) -> None:
        config = Configuration(host=bandwidth_api_url, ignore_operation_servers=True, username="user", password="pass")
        self.messages = MessagesApi(ApiClient(config))
        self.account_id = account_id
        self.opted_out: set[str] = set()
        self.statuses: list[tuple[str, str]] = []

    def __call__(self, environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        for event in json.loads(environ["wsgi.input"].read(size)):
            if event["type"] == "message-received" and event["message"]["text"].strip().upper() == "STOP":
                handset = event["message"]["from"]
                self.opted_out.add(handset)
                self.messages.create_message(
                    self.account_id,
                    MessageRequest(
                        application_id=APPLICATION, to=[handset], var_from=event["to"], text="You are unsubscribed."
                    ),
                )
            elif event["type"] != "message-received":
                self.statuses.append((event["type"], event["to"]))
        start_response("204 No Content", [])
        return [b""]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # keep the test output clean
        pass


@pytest.fixture
def my_app(bandwidth_emulator):
    app = OptOutApp(bandwidth_emulator.api_url, bandwidth_emulator.account_id)
    server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    # Our number belongs to our application, whose webhooks are the app's.
    bandwidth_emulator.set_scenario(
        {
            "applications": [
                {
                    "id": APPLICATION,
                    "numbers": [OUR_NUMBER],
                    "inboundCallbackUrl": f"{url}/bandwidth/inbound",
                    "statusCallbackUrl": f"{url}/bandwidth/status",
                }
            ]
        }
    )
    yield app
    server.shutdown()
    server.server_close()


def test_stop_gets_a_confirmation(bandwidth_emulator, my_app):
    # A handset texts STOP to our number.
    [inbound] = bandwidth_emulator.inbound(from_=HANDSET, to=OUR_NUMBER, text="STOP")

    # Firing the message-received callback runs the app's handler, which replies.
    bandwidth_emulator.advance(0)
    bandwidth_emulator.assert_attempts(inbound["id"], [204], type="message-received", state="delivered")
    assert my_app.opted_out == {HANDSET}

    # The reply is a message like any other; if the app replied later (a job queue),
    # wait_for_messages would long-poll for it instead of sleeping.
    [reply] = bandwidth_emulator.wait_for_messages(direction="out", to=HANDSET, timeout=5)
    assert reply["text"] == "You are unsubscribed."
    assert reply["from"] == OUR_NUMBER

    # Its delivery receipt reaches the app's status webhook.
    bandwidth_emulator.advance(1)
    bandwidth_emulator.assert_callbacks(reply["id"], ["message-delivered"])
    assert my_app.statuses == [("message-delivered", HANDSET)]


def test_other_texts_get_no_reply(bandwidth_emulator, my_app):
    bandwidth_emulator.inbound(from_=HANDSET, to=OUR_NUMBER, text="What time do you open?")
    bandwidth_emulator.advance(60)
    assert bandwidth_emulator.messages(direction="out") == []
    assert my_app.opted_out == set()
