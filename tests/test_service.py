"""The messaging service's resolution of applications, as sends see it."""

from __future__ import annotations

from emulator.delivery.clock import ManualClock
from emulator.scenarios.format import parse_scenario
from emulator.service import MessagingService

BODY = {"applicationId": "app-1", "to": ["+15552221111"], "from": "+15554443333", "text": "hi"}


def callback_urls(service: MessagingService, message_id: str) -> set[str | None]:
    return {c.url for c in service.store.callbacks_for_message(message_id)}


def test_a_changed_fallback_url_applies_to_the_next_send():
    service = MessagingService(clock=ManualClock(), scenario=parse_scenario({}), callback_url="http://127.0.0.1:1/a")
    first = service.send("1", BODY)
    service.callback_url = "http://127.0.0.1:1/b"
    second = service.send("1", BODY)
    assert callback_urls(service, first.id) == {"http://127.0.0.1:1/a"}
    assert callback_urls(service, second.id) == {"http://127.0.0.1:1/b"}


def test_a_replaced_scenario_applies_to_the_next_send():
    service = MessagingService(clock=ManualClock(), scenario=parse_scenario({}), callback_url="http://127.0.0.1:1/a")
    first = service.send("1", BODY)
    service.replace_scenario(
        parse_scenario({"applications": [{"id": "app-1", "statusCallbackUrl": "http://127.0.0.1:1/app"}]})
    )
    second = service.send("1", BODY)
    assert callback_urls(service, first.id) == {"http://127.0.0.1:1/a"}
    assert callback_urls(service, second.id) == {"http://127.0.0.1:1/app"}
