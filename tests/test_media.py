"""Media API: upload, get, list, delete, ids with '/', limits, expiry, inbound MMS media,
and the checks a send makes on media URLs into the emulator's own store."""

from __future__ import annotations

import base64

import pytest
from support import ACCOUNT, AUTH, advance, send

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
MEDIA = f"/api/v2/users/{ACCOUNT}/media"


async def put(client, media_id: str, body: bytes = PNG, content_type: str = "image/png", account: str = ACCOUNT, **headers):
    return await client.put(
        f"/api/v2/users/{account}/media/{media_id}", data=body, headers={**AUTH, "Content-Type": content_type, **headers}
    )


async def test_upload_get_overwrite_delete(client):
    resp = await put(client, "cat.png", **{"Cache-Control": "no-cache"})
    assert resp.status == 204 and await resp.read() == b""
    got = await client.get(f"{MEDIA}/cat.png", headers=AUTH)
    assert got.status == 200 and await got.read() == PNG
    assert got.headers["Content-Type"] == "image/png" and got.headers["Cache-Control"] == "no-cache"
    assert (await put(client, "cat.png", b"GIF89a", "image/gif")).status == 204
    got = await client.get(f"{MEDIA}/cat.png", headers=AUTH)
    assert await got.read() == b"GIF89a" and got.headers["Content-Type"] == "image/gif"
    assert "Cache-Control" not in got.headers
    assert (await client.delete(f"{MEDIA}/cat.png", headers=AUTH)).status == 204
    missing = await client.get(f"{MEDIA}/cat.png", headers=AUTH)
    assert missing.status == 404
    assert (await missing.json())["type"] == "not-found"
    gone = await client.delete(f"{MEDIA}/cat.png", headers=AUTH)
    assert gone.status == 204  # deleting what is gone succeeds, as on Bandwidth
    assert (await put(client, "cat.png")).status == 204  # a deleted name can be reused at once


@pytest.mark.parametrize("accept", ["application/json", "application/octet-stream", "image/*", "*/*"])
async def test_get_answers_bytes_whatever_the_sdk_accepts(client, accept):
    await put(client, "a.png")
    got = await client.get(f"{MEDIA}/a.png", headers={**AUTH, "Accept": accept})
    assert got.status == 200 and await got.read() == PNG


async def test_get_with_unacceptable_accept_is_406(client):
    await put(client, "a.png")
    got = await client.get(f"{MEDIA}/a.png", headers={**AUTH, "Accept": "text/html"})
    assert got.status == 406 and (await got.json())["type"] == "not-acceptable"


async def test_media_id_with_slashes_raw_or_encoded(client):
    assert (await put(client, "folder%2Fprobe%203.png")).status == 204
    raw = await client.get(f"{MEDIA}/folder/probe 3.png", headers=AUTH)
    assert raw.status == 200 and await raw.read() == PNG
    assert (await put(client, "14762070468292kw2fuqty55yp2b2/0/bw.png")).status == 204
    encoded = await client.get(f"{MEDIA}/14762070468292kw2fuqty55yp2b2%2F0%2Fbw.png", headers=AUTH)
    assert encoded.status == 200
    names = {m["mediaName"] for m in await (await client.get(MEDIA, headers=AUTH)).json()}
    assert names == {"folder/probe 3.png", "14762070468292kw2fuqty55yp2b2/0/bw.png"}


async def test_list_shape_and_continuation_token(client):
    for i in range(1001):
        assert (await put(client, f"f{i:04d}.txt", b"x" * (i % 7), "text/plain")).status == 204
    first = await client.get(MEDIA, headers=AUTH)
    items = await first.json()
    assert len(items) == 1000
    assert set(items[0]) == {"content", "contentLength", "mediaName"}
    assert items[0]["mediaName"] == "f0000.txt" and items[0]["contentLength"] == 0
    assert items[0]["content"] == str(client.make_url(f"{MEDIA}/f0000.txt"))
    token = first.headers["Continuation-Token"]
    second = await client.get(MEDIA, headers={**AUTH, "Continuation-Token": token})
    rest = await second.json()
    assert [m["mediaName"] for m in rest] == ["f1000.txt"] and rest[0]["contentLength"] == 1000 % 7
    assert "Continuation-Token" not in second.headers
    bad = await client.get(MEDIA, headers={**AUTH, "Continuation-Token": "!!!"})
    assert bad.status == 400


async def test_list_content_url_fetches_the_file(client):
    await put(client, "dir/a b.png")
    [item] = await (await client.get(MEDIA, headers=AUTH)).json()
    assert item["contentLength"] == len(PNG)
    path = item["content"].split(str(client.make_url("")).rstrip("/"), 1)[1]
    got = await client.get(path, headers=AUTH)
    assert got.status == 200 and await got.read() == PNG


async def test_media_is_per_account(client):
    await put(client, "secret.png")
    assert (await client.get("/api/v2/users/1111111/media/secret.png", headers=AUTH)).status == 404
    assert await (await client.get("/api/v2/users/1111111/media", headers=AUTH)).json() == []
    # Deleting what the account does not have succeeds and touches nothing of the other's.
    assert (await client.delete("/api/v2/users/1111111/media/secret.png", headers=AUTH)).status == 204
    assert (await client.get(f"{MEDIA}/secret.png", headers=AUTH)).status == 200


async def test_size_limit_is_per_file_and_configurable(make_client):
    client = await make_client({"mediaSizeLimit": 1000})
    assert (await put(client, "ok.bin", b"x" * 1000, "application/zip")).status == 204
    big = await put(client, "big.bin", b"x" * 1001, "application/zip")
    assert big.status == 400
    body = await big.json()
    assert body["type"] == "request-validation" and "1000 bytes" in body["description"]
    assert (await client.get(f"{MEDIA}/big.bin", headers=AUTH)).status == 404


async def test_default_limit_is_3_5_mb(client):
    assert (await put(client, "max.bin", b"x" * 3_500_000, "video/mp4")).status == 204
    assert (await put(client, "over.bin", b"x" * 3_500_001, "video/mp4")).status == 400


async def test_media_expires_after_48_virtual_hours(client):
    await put(client, "old.png")
    await advance(client, 47 * 3600)
    await put(client, "new.png")
    assert (await client.get(f"{MEDIA}/old.png", headers=AUTH)).status == 200
    await advance(client, 3600)
    assert (await client.get(f"{MEDIA}/old.png", headers=AUTH)).status == 404
    assert [m["mediaName"] for m in await (await client.get(MEDIA, headers=AUTH)).json()] == ["new.png"]


@pytest.mark.parametrize("content_type", ["", "png", "image/"])
async def test_upload_needs_a_media_type(client, content_type):
    resp = await client.put(f"{MEDIA}/a.png", data=PNG, headers={**AUTH, "Content-Type": content_type})
    assert resp.status == 415
    assert (await resp.json())["type"] == "unsupported-content-type"


async def test_media_needs_auth_and_known_methods(client):
    assert (await client.get(f"{MEDIA}/a.png")).status == 401
    assert (await client.put(f"{MEDIA}/a.png", data=PNG)).status == 401
    resp = await client.post(f"{MEDIA}/a.png", data=PNG, headers=AUTH)
    assert resp.status == 405 and (await resp.json())["type"] == "method-not-allowed"


# -- sends that use media from the emulator's own store -------------------------------------

SMS = {"applicationId": "app-1", "to": ["+15552221111"], "from": "+15554443333", "text": "look"}


async def test_send_with_own_media_delivers(client, receiver):
    await put(client, "ok.png")
    base = str(client.make_url("")).rstrip("/")
    resp = await send(client, dict(SMS, media=[f"{base}{MEDIA}/ok.png"]))
    assert resp.status == 202
    await advance(client, 10)
    assert [e["type"] for e in receiver.events] == ["message-sending", "message-delivered"]


async def test_send_with_missing_own_media_fails_4410(client, receiver):
    resp = await send(client, dict(SMS, media=[f"http://127.0.0.1:1{MEDIA}/nope.png"], to=["+15552221111", "+15552221112"]))
    assert resp.status == 202
    await advance(client, 10)
    assert sorted((e["type"], e["to"], e["errorCode"]) for e in receiver.events) == [
        ("message-failed", "+15552221111", 4410),
        ("message-failed", "+15552221112", 4410),
    ]


async def test_send_with_too_big_own_media_fails_4411(make_client, receiver):
    client = await make_client({"mediaSizeLimit": 100})
    await put(client, "a.bin", b"x" * 60, "application/zip")
    await put(client, "b.bin", b"x" * 60, "application/zip")
    urls = [f"https://messaging.bandwidth.com{MEDIA}/a.bin", f"https://messaging.bandwidth.com{MEDIA}/b.bin"]
    await send(client, dict(SMS, media=urls))
    await advance(client, 10)
    [event] = receiver.events
    assert event["type"] == "message-failed" and event["errorCode"] == 4411


async def test_external_media_is_accepted_without_fetching(client, receiver):
    await send(client, dict(SMS, media=["https://example.invalid/cat.png"]))
    await advance(client, 10)
    assert receiver.events[-1]["type"] == "message-delivered"


# -- inbound MMS ----------------------------------------------------------------------------


async def test_inbound_media_is_stored_under_message_id_and_served(client, receiver):
    await put(client, "from-handset.jpg", b"JPEGDATA", "image/jpeg")
    base = str(client.make_url("")).rstrip("/")
    resp = await client.post(
        "/_emulator/inbound",
        json={
            "from": "+15557770000",
            "to": "+15554443333",
            "text": "pics",
            "media": [
                {"content": base64.b64encode(PNG).decode(), "contentType": "image/png", "filename": "bw.png"},
                f"{base}{MEDIA}/from-handset.jpg",
                "https://example.invalid/outside.gif",
            ],
        },
    )
    assert resp.status == 201, await resp.text()
    [message] = (await resp.json())["messages"]
    await advance(client, 1)
    [event] = receiver.events
    media = event["message"]["media"]
    assert media[0] == f"{base}{MEDIA}/{message['id']}/0/bw.png"
    assert media[1] == f"{base}{MEDIA}/{message['id']}/1/from-handset.jpg"
    assert media[2] == "https://example.invalid/outside.gif"
    got = await client.get(media[0][len(base):], headers=AUTH)
    assert await got.read() == PNG and got.headers["Content-Type"] == "image/png"
    got = await client.get(f"{MEDIA}/{message['id']}%2F1%2Ffrom-handset.jpg", headers=AUTH)
    assert await got.read() == b"JPEGDATA" and got.headers["Content-Type"] == "image/jpeg"


async def test_inbound_media_with_bad_base64_is_a_clear_400(client):
    resp = await client.post(
        "/_emulator/inbound", json={"from": "+15557770000", "to": "+15554443333", "media": [{"content": "%%%"}]}
    )
    assert resp.status == 400
    assert "base64" in str(await resp.json())


async def test_another_accounts_user_cannot_touch_media(make_client):
    client = await make_client(
        {"accounts": [{"id": ACCOUNT, "credentials": [{"username": "user", "password": "pass"}]},
                      {"id": "2222222", "credentials": [{"username": "other", "password": "secret"}]}]}
    )
    await put(client, "mine.png")
    other = {"Authorization": "Basic b3RoZXI6c2VjcmV0"}  # other:secret
    for method in ("GET", "DELETE"):
        resp = await client.request(method, f"{MEDIA}/mine.png", headers=other)
        assert resp.status == 403 and (await resp.json())["type"] == "forbidden"
    assert (await client.get(MEDIA, headers=other)).status == 403
    assert (await client.get(f"{MEDIA}/mine.png", headers=AUTH)).status == 200


async def test_scheduled_inbound_media_from_own_store_is_stored_under_the_message(receiver):
    from emulator.testing.runner import Emulator

    scenario = {
        "inbound": [{"at": "10s", "from": "+15557770000", "to": "+15554443333", "text": "pic",
                     "media": [f"https://messaging.bandwidth.com{MEDIA}/pic.png", "https://example.invalid/x.gif"]}],
    }
    async with Emulator(scenario, callback_url=receiver.url) as emu:
        await emu.request("PUT", f"{MEDIA}/pic.png", data=PNG, headers={"Content-Type": "image/png"}, auth=True)
        await emu.advance(10)
        [event] = receiver.events
        message_id = event["message"]["id"]
        assert event["message"]["media"] == [
            f"{emu.base_url}{MEDIA}/{message_id}/0/pic.png",
            "https://example.invalid/x.gif",
        ]
        served = await emu.request("GET", f"{MEDIA}/{message_id}%2F0%2Fpic.png", auth=True)
        assert served == PNG.decode("utf-8", "replace")


async def test_deleting_media_twice_succeeds(client):
    # Bandwidth's own media smoke test deletes the same file twice and expects success.
    await put(client, "twice.png")
    for _ in range(2):
        resp = await client.delete(f"{MEDIA}/twice.png", headers=AUTH)
        assert resp.status == 204
        assert await resp.read() == b""
    assert (await client.get(f"{MEDIA}/twice.png", headers=AUTH)).status == 404


@pytest.mark.parametrize("accept", ["text/plain", "text/html", "image/png"])
async def test_answers_without_a_body_ignore_accept(client, accept):
    # Bandwidth's Node SDK test uploads with Accept: text/plain and expects 204.
    headers = {**AUTH, "Accept": accept, "Content-Type": "image/png"}
    assert (await client.put(f"{MEDIA}/a.png", data=PNG, headers=headers)).status == 204
    assert (await client.delete(f"{MEDIA}/a.png", headers={**AUTH, "Accept": accept})).status == 204
