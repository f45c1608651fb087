"""emulator/state/store.py: records scoped by account, global lookups by id, and an observer
told of every change."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.state.models import Callback, Message
from emulator.state.store import MediaItem, Store


def message(id: str, account: str = "1111111", **fields: Any) -> Message:
    return Message(
        id=id, account_id=account, application_id="app", direction="out", from_="+15554443333",
        to=("+15552221111",), owner="+15554443333", time=1_700_000_000.0, segment_count=1, **fields,
    )  # fmt: skip


def callback(id: str, message_id: str, account: str = "1111111") -> Callback:
    # Ids that do not name their message, as in --db files from before ids were cb-{messageId}-{n}.
    return Callback(
        other_id=id, account_id=account, message_id=message_id, application_id="app", type="message-delivered",
        recipient="+15552221111", url="http://127.0.0.1:9/cb", planned_at=1_700_000_001.0,
    )  # fmt: skip


def media(account: str, name: str, content: bytes = b"x") -> MediaItem:
    return MediaItem(account, name, content, "image/png", None, 1_700_000_000.0)


class Recorder:
    """A StoreObserver that writes down what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def message_saved(self, message: Message) -> None:
        self.events.append(("message", message.id))

    def callback_saved(self, callback: Callback) -> None:
        self.events.append(("callback", callback.id))

    def media_saved(self, item: MediaItem) -> None:
        self.events.append(("media", (item.account_id, item.media_id)))

    def media_deleted(self, account_id: str, media_id: str) -> None:
        self.events.append(("media deleted", (account_id, media_id)))

    def message_forgotten(self, message: Message, callbacks: list[Callback]) -> None:
        self.events.append(("forgotten", (message.id, [c.id for c in callbacks])))

    def reset(self, account_id: str | None) -> None:
        self.events.append(("reset", account_id))


def test_messages_are_found_by_id_across_accounts_and_listed_per_account() -> None:
    store = Store()
    store.add_message(message("m1", "1111111"))
    store.add_message(message("m2", "2222222"))
    store.add_message(message("m3", "1111111"))
    assert store.get_message("m2").account_id == "2222222"
    assert store.get_message("missing") is None
    assert [m.id for m in store.messages("1111111")] == ["m1", "m3"]
    assert [m.id for m in store.messages("2222222")] == ["m2"]
    assert [m.id for m in store.messages("3333333")] == []
    assert sorted(m.id for m in store.messages()) == ["m1", "m2", "m3"]


def test_callbacks_are_found_by_id_by_account_and_by_message() -> None:
    store = Store()
    store.add_message(message("m1"))
    store.add_callback(callback("c1", "m1"))
    store.add_callback(callback("c2", "m1"))
    store.add_callback(callback("c3", "m9", "2222222"))
    assert store.get_callback("c3").message_id == "m9"
    assert store.get_callback("missing") is None
    assert [c.id for c in store.callbacks_for_message("m1")] == ["c1", "c2"]
    assert store.callbacks_for_message("nothing") == []
    assert [c.id for c in store.callbacks("1111111")] == ["c1", "c2"]
    assert sorted(c.id for c in store.callbacks()) == ["c1", "c2", "c3"]


def test_callbacks_for_message_is_a_copy() -> None:
    store = Store()
    store.add_callback(callback("c1", "m1"))
    store.callbacks_for_message("m1").clear()
    assert [c.id for c in store.callbacks_for_message("m1")] == ["c1"]


def test_media_is_kept_per_account_and_replaced_by_name() -> None:
    store = Store()
    store.put_media(media("1111111", "cat.png", b"one"))
    store.put_media(media("2222222", "cat.png", b"other"))
    store.put_media(media("1111111", "cat.png", b"two"))
    assert store.get_media("1111111", "cat.png").content == b"two"
    assert store.get_media("2222222", "cat.png").content == b"other"
    assert store.get_media("3333333", "cat.png") is None
    assert [m.content for m in store.media("1111111")] == [b"two"]
    assert store.media("3333333") == []


def test_deleting_media_says_whether_there_was_any() -> None:
    store = Store()
    store.put_media(media("1111111", "cat.png"))
    assert store.delete_media("2222222", "cat.png") is False  # another account's name
    assert store.delete_media("1111111", "cat.png") is True
    assert store.delete_media("1111111", "cat.png") is False
    assert store.get_media("1111111", "cat.png") is None


def test_reset_of_one_account_forgets_it_only_and_returns_its_callbacks() -> None:
    store = Store()
    store.add_message(message("m1", "1111111"))
    store.add_callback(callback("c1", "m1", "1111111"))
    store.put_media(media("1111111", "a.png"))
    store.add_message(message("m2", "2222222"))
    store.add_callback(callback("c2", "m2", "2222222"))
    store.put_media(media("2222222", "b.png"))

    dropped = store.reset("1111111")

    assert [c.id for c in dropped] == ["c1"]
    assert store.get_message("m1") is None and store.get_callback("c1") is None
    assert store.callbacks_for_message("m1") == []
    assert store.media("1111111") == []
    assert store.get_message("m2") is not None and store.get_callback("c2") is not None
    assert [c.id for c in store.callbacks_for_message("m2")] == ["c2"]
    assert store.get_media("2222222", "b.png") is not None


def test_reset_of_everyone_and_of_an_unknown_account() -> None:
    store = Store()
    store.add_message(message("m1", "1111111"))
    store.add_callback(callback("c1", "m1", "1111111"))
    store.add_callback(callback("c2", "m2", "2222222"))
    assert store.reset("9999999") == []
    assert store.get_callback("c1") is not None

    assert sorted(c.id for c in store.reset()) == ["c1", "c2"]
    assert list(store.messages()) == [] and list(store.callbacks()) == []
    assert store.get_message("m1") is None and store.get_callback("c2") is None
    assert store.callbacks_for_message("m1") == []


def test_the_observer_is_told_of_every_change_in_order() -> None:
    store = Store()
    recorder = Recorder()
    store.observer = recorder
    m = message("m1")
    store.add_message(m)
    store.message_changed(m)
    c = callback("c1", "m1")
    store.add_callback(c)
    store.callback_changed(c)
    store.put_media(media("1111111", "a.png"))
    store.delete_media("1111111", "a.png")
    store.delete_media("1111111", "a.png")  # nothing deleted: nothing told
    store.reset("1111111")
    store.reset()
    assert recorder.events == [
        ("message", "m1"),
        ("message", "m1"),
        ("callback", "c1"),
        ("callback", "c1"),
        ("media", ("1111111", "a.png")),
        ("media deleted", ("1111111", "a.png")),
        ("reset", "1111111"),
        ("reset", None),
    ]


def test_without_an_observer_nothing_is_written_through() -> None:
    store = Store()
    m = message("m1")
    store.add_message(m)
    store.message_changed(m)  # no observer: no error
    assert store.get_message("m1") is m


def test_forgetting_a_message_takes_its_callbacks_and_tells_the_observer() -> None:
    store = Store()
    recorder = Recorder()
    store.add_message(message("m1"))
    store.add_message(message("m2"))
    store.add_callback(callback("c1", "m1"))
    store.add_callback(callback("c2", "m1"))
    store.add_callback(callback("c3", "m2"))
    store.observer = recorder
    assert [c.id for c in store.forget_message("m1")] == ["c1", "c2"]
    assert recorder.events == [("forgotten", ("m1", ["c1", "c2"]))]
    assert store.get_message("m1") is None and store.get_callback("c1") is None
    assert store.callbacks_for_message("m1") == [] and not store.has_pending_callback("m1")
    assert [m.id for m in store.messages("1111111")] == ["m2"] and store.message_count("1111111") == 1
    assert [c.id for c in store.callbacks("1111111")] == ["c3"] and store.has_pending_callback("m2")
    assert store.forget_message("m1") == []  # already gone: nothing told
    assert len(recorder.events) == 1


def planned(message_id: str, order: int, account: str = "1111111") -> Callback:
    """A callback as the service plans it: its id is cb-{messageId}-{order}, not stored."""
    return Callback(
        account_id=account, message_id=message_id, application_id="app", type="message-delivered",
        recipient="+15552221111", url="http://127.0.0.1:9/cb", planned_at=1_700_000_001.0, order=order,
    )  # fmt: skip


def test_callbacks_named_after_their_message_are_kept_and_found_through_it() -> None:
    store = Store()
    store.add_message(message("1700000000000abcdefghijklmnop"))
    store.add_message(message("other"))
    first, second = planned("1700000000000abcdefghijklmnop", 0), planned("1700000000000abcdefghijklmnop", 1)
    store.add_callback(first)
    assert store.get_callback("cb-1700000000000abcdefghijklmnop-0") is first
    store.add_callback(second)
    store.add_callback(planned("other", 0))
    assert first.id == "cb-1700000000000abcdefghijklmnop-0"
    assert store.get_callback("cb-1700000000000abcdefghijklmnop-1") is second
    assert store.get_callback("cb-1700000000000abcdefghijklmnop-2") is None
    assert store.get_callback("cb-missing-0") is None and store.get_callback("cb-") is None
    assert store.callbacks_for_message("1700000000000abcdefghijklmnop") == [first, second]
    assert [c.id for c in store.callbacks("1111111")] == [first.id, second.id, "cb-other-0"]
    assert store._loose_callbacks == {}  # nothing kept apart: the message holds them

    store.discard_callback(second.id)
    assert store.get_callback(second.id) is None
    assert store.callbacks_for_message("1700000000000abcdefghijklmnop") == [first]

    forgotten = store.forget_message("1700000000000abcdefghijklmnop")
    assert forgotten == [first]
    assert store.get_callback(first.id) is None
    assert [c.id for c in store.reset("1111111")] == ["cb-other-0"]
    assert store.get_callback("cb-other-0") is None


def test_callbacks_whose_id_does_not_name_their_message_are_kept_apart_and_still_found() -> None:
    # --db files from before callback ids were cb-{messageId}-{n} hold random ids.
    store = Store()
    store.add_message(message("m1"))
    store.add_callback(planned("m1", 0))
    legacy = callback("cb-x7k2", "m1")
    store.add_callback(legacy)
    assert store.get_callback("cb-x7k2") is legacy
    assert [c.id for c in store.callbacks_for_message("m1")] == ["cb-m1-0", "cb-x7k2"]
    assert store.has_pending_callback("m1")
    store.get_callback("cb-m1-0").state = "delivered"
    assert store.has_pending_callback("m1")  # the older one still is
    legacy.state = "delivered"
    assert not store.has_pending_callback("m1")
    assert store.forget_message("m1")[1] is legacy
    assert store.get_callback("cb-x7k2") is None and store._loose_callbacks == {} and store._loose_by_message == {}
    store.add_callback(callback("cb-y", "gone", "2222222"))  # its message is not here
    assert store.callbacks_for_message("gone")[0].id == "cb-y" and store.has_pending_callback("gone")
    assert [c.id for c in store.reset("2222222")] == ["cb-y"] and store._loose_by_message == {}


def test_a_message_reads_its_recipients_as_a_mapping_by_number() -> None:
    from emulator.state.models import Recipients, RecipientStatus

    one = Recipients([RecipientStatus("+15552221111")])
    group = Recipients([RecipientStatus("+15552221111"), RecipientStatus("+15552222222", "DELIVERED")])
    assert list(one) == ["+15552221111"] and len(one) == 1
    assert one["+15552221111"].status == "QUEUED" and one.get("+15559999999") is None
    assert list(group) == ["+15552221111", "+15552222222"] and len(group) == 2
    assert [s.status for s in group.values()] == ["QUEUED", "DELIVERED"]
    assert group.get("+15552222222").status == "DELIVERED" and "+15552222222" in group
    assert group == {"+15552221111": RecipientStatus("+15552221111"), "+15552222222": RecipientStatus("+15552222222", "DELIVERED")}
    assert len(Recipients()) == 0 and list(Recipients().values()) == []
    with pytest.raises(KeyError):
        group["+15559999999"]
    with pytest.raises(KeyError):
        one["+15559999999"]


def test_messages_are_found_by_id_with_few_accounts_and_with_many() -> None:
    # Up to FEW_ACCOUNTS accounts each account's dict is asked in turn; past it a global index
    # is built from what is there, and kept up to date.
    from emulator.state.store import FEW_ACCOUNTS

    store = Store()
    accounts = [f"{1111111 * (i + 1)}" for i in range(FEW_ACCOUNTS + 2)]
    for i, account in enumerate(accounts):
        store.add_message(message(f"m{i}", account))
        store.add_callback(planned(f"m{i}", 0, account))
        assert store._message_account is None if i < FEW_ACCOUNTS else store._message_account is not None
        for j in range(i + 1):
            assert store.get_message(f"m{j}").account_id == accounts[j]
            assert store.get_callback(f"cb-m{j}-0").account_id == accounts[j]
    assert store.get_message("missing") is None
    store.discard_message("m0")
    assert store.get_message("m0") is None and [m.id for m in store.messages(accounts[0])] == []
    assert [c.id for c in store.forget_message("m1")] == ["cb-m1-0"] and store.get_message("m1") is None
    assert [c.id for c in store.reset(accounts[2])] == ["cb-m2-0"] and store.get_message("m2") is None
    assert store.get_message("m3").account_id == accounts[3]
    store.reset()
    assert store.get_message("m3") is None and store._message_account is None

    few = Store()
    few.add_message(message("a", accounts[0]))
    few.add_message(message("b", accounts[1]))
    few.discard_message("b")
    assert few.get_message("b") is None and few.get_message("a") is not None
    assert [c.id for c in few.forget_message("a")] == [] and few.get_message("a") is None


def test_seldom_set_fields_read_and_write_as_attributes_and_cost_a_slot_only_when_set() -> None:
    # emulator/state/models.py folds them into one slot (bench/RESULTS.md, 'Memory per stored message').
    from emulator.state.models import MESSAGE_FIELDS, Callback, Message

    plain = Message("m1", "1", "app", "out", "+15554443333", ("+15552221111",), "+15554443333", 1.0, 1)
    assert plain._rare is None and plain._to == "+15552221111" and plain.to == ("+15552221111",)
    assert (plain.tag, plain.priority, plain.expiration, plain.channel, plain.multichannel) == (None, "default", None, None, None)
    tagged = Message("m1", "1", "app", "out", "+15554443333", ("+15552221111",), "+15554443333", 1.0, 1, tag="t")
    assert tagged.tag == "t" and tagged != plain
    tagged.priority = "high"
    tagged.tag = None
    assert tagged.priority == "high" and tagged.tag is None and tagged != plain
    tagged.priority = "default"  # every one back at its default: the slot is None again
    assert tagged._rare is None and tagged == plain
    plain.channel = "RBM"
    plain.multichannel = {"channelList": []}
    assert plain.message_type == "rcs" and plain.multichannel == {"channelList": []}
    group = plain.replace(to=("+15552221111", "+15552222222"), channel=None)
    assert group.to == ("+15552221111", "+15552222222") and group.kind == "group"
    assert group.multichannel == {"channelList": []} and group.channel is None and plain.channel == "RBM"
    assert {name: getattr(group, name) for name in MESSAGE_FIELDS}["to"] == group.to
    mms = plain.replace(channel=None, multichannel=None, media=("https://example.com/a.png",))
    assert mms._rare is not None and mms.media == ("https://example.com/a.png",) and mms.kind == "mms"
    mms.media = ()
    assert mms._rare is None and mms.kind == "sms"

    callback = Callback("1", "m1", "app", "message-delivered", "+15552221111", None, 2.0)
    assert callback._rare is None and callback.id == "cb-m1-0"
    assert (callback.error_code, callback.carrier_name, callback.held_by, callback.channel, callback.other_id) == (None,) * 5
    callback.held_by = "cb-m1-1"
    assert callback.held_by == "cb-m1-1" and callback._rare is not None
    callback.held_by = None
    assert callback._rare is None
    failed = Callback("1", "m1", "app", "message-failed", "+15552221111", None, 2.0, error_code=4720, carrier_name="T")
    assert (failed.error_code, failed.carrier_name, failed.held_by) == (4720, "T", None)
    failed.other_id = "cb-random"
    assert failed.id == "cb-random" and failed.error_code == 4720


# -- the latest outbound message per sending number (inbound attribution) -------------------


def sent(id: str, account: str = "1111111", time: float = 1_700_000_000.0, from_: str = "+15554443333") -> Message:
    return Message(
        id=id, account_id=account, application_id="app", direction="out", from_=from_,
        to=("+15552221111",), owner=from_, time=time, segment_count=1,
    )  # fmt: skip


def indexed(store: Store) -> list[Message]:
    """Every message the sender index holds (to prove it keeps none alive)."""
    return [m for by_account in store._last_out.values() for m in by_account.values()]


def test_the_latest_outbound_message_per_number_is_kept_as_messages_are_added() -> None:
    store = Store()
    assert store.last_outbound_from("+15554443333") is None
    store.add_message(first := sent("m1", time=1.0))
    store.add_message(other_number := sent("m2", time=2.0, from_="+15554440000"))
    assert store.last_outbound_from("+15554443333") is first
    store.add_message(later := sent("m3", time=3.0))
    store.add_message(sent("m0", time=0.5))  # older (a --db file read out of order): not the latest
    assert store.last_outbound_from("+15554443333") is later
    assert store.last_outbound_from("+15554440000") is other_number
    # Inbound messages are not conversations; the handset's number has none.
    store.add_message(Message(
        id="in1", account_id="1111111", application_id="app", direction="in", from_="+15554443333",
        to=("+15559990000",), owner="+15559990000", time=9.0, segment_count=1,
    ))  # fmt: skip
    assert store.last_outbound_from("+15554443333") is later


def test_across_accounts_the_latest_wins_and_on_a_tie_the_one_stored_last() -> None:
    store = Store()
    store.add_message(sent("a1", "A", time=5.0))
    store.add_message(b1 := sent("b1", "B", time=6.0))
    assert store.last_outbound_from("+15554443333") is b1
    store.add_message(a2 := sent("a2", "A", time=6.0))
    assert store.last_outbound_from("+15554443333") is a2


def test_a_forgotten_conversation_is_dropped_not_replaced_by_an_older_message_of_its_account() -> None:
    store = Store()
    store.add_message(older := sent("m1", "A", time=1.0))
    store.add_message(latest := sent("m2", "A", time=2.0))
    store.add_message(elsewhere := sent("b1", "B", time=0.5))
    store.forget_message(older.id)  # not the indexed one: nothing changes
    assert store.last_outbound_from("+15554443333") is latest
    store.add_message(older)
    store.forget_message(latest.id)
    # Retention forgot account A's latest: A has no conversation from the number any more
    # (docs/control-api.md, 'Inbound messages'); account B's still counts.
    assert store.last_outbound_from("+15554443333") is elsewhere
    assert all(m is not latest for m in indexed(store))
    store.forget_message(elsewhere.id)
    assert store.last_outbound_from("+15554443333") is None
    assert indexed(store) == []


def test_a_discarded_send_gives_the_number_back_its_previous_conversation() -> None:
    store = Store()
    store.add_message(previous := sent("m1", time=1.0))
    store.add_message(failed := sent("m2", time=2.0))
    store.discard_message(failed.id)  # its write failed: the send never happened
    assert store.last_outbound_from("+15554443333") is previous
    store.discard_message(previous.id)
    assert store.last_outbound_from("+15554443333") is None


def test_a_reset_drops_the_conversations_of_its_account_only() -> None:
    store = Store()
    store.add_message(sent("a1", "A", time=2.0))
    store.add_message(b1 := sent("b1", "B", time=1.0))
    store.reset("A")
    assert store.last_outbound_from("+15554443333") is b1
    store.reset()
    assert store.last_outbound_from("+15554443333") is None
    assert indexed(store) == []


def test_a_message_keeps_its_statuses_and_reads_them_as_recipients() -> None:
    from emulator.state.models import Callback, Message, Recipients, RecipientStatus

    first, second = RecipientStatus("+15552221111"), RecipientStatus("+15552222222", "DELIVERED")
    group = Message("m1", "1", "app", "out", "+15554443333", ("+15552221111", "+15552222222"), "+15554443333", 1.0, 1,
                    recipients=Recipients([first, second]))
    assert group._statuses == (first, second) and isinstance(group.recipients, Recipients)
    assert group.recipients["+15552222222"] is second and list(group.recipients) == ["+15552221111", "+15552222222"]
    group.recipients["+15552221111"].status = "SENT"  # statuses change in place
    assert first.status == "SENT"
    one = Message("m2", "1", "app", "out", "+15554443333", ("+15552221111",), "+15554443333", 1.0, 1,
                  recipients={"+15552221111": first})
    assert one._statuses is first and dict(one.recipients) == {"+15552221111": first}
    one.recipients = {"+15552222222": second}
    assert one._statuses is second
    # A message's callbacks are the store's index of them, not part of what it is.
    twin = one.replace()
    one.callbacks = Callback("1", "m2", "app", "message-delivered", "+15552222222", None, 2.0)
    assert twin == one and twin.callbacks == ()

