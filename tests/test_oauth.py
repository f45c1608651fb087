"""OAuth2 client credentials: the token endpoint, and Bearer tokens on every Bandwidth route."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from emulator.web import tokens
from emulator.web.tokens import TokenStore

TOKEN_URL = "/api/v1/oauth2/token"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BODY = {"applicationId": "app", "from": "+15554443333", "to": ["+15551230001"], "text": "hi"}

SCENARIO = {
    "accounts": [
        {"id": "1111111", "oauthClients": [{"clientId": "alice-app", "clientSecret": "a-secret"}]},
        {
            "id": "2222222",
            "oauthClients": [{"clientId": "bob-app", "clientSecret": "b-secret", "tokenLifetime": "5m"}],
            "accessTokens": ["fixed-bob-token"],
        },
        {"id": "3333333", "credentials": [{"username": "carol", "password": "c"}]},
    ]
}

# Every Bandwidth Messaging route, each with what it needs to get past authentication.
ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/v2/users/{a}/messages", {"json": BODY}),
    ("GET", "/api/v2/users/{a}/messages", {"params": {"messageDirection": "OUTBOUND"}}),
    ("GET", "/api/v2/users/{a}/media", {}),
    ("PUT", "/api/v2/users/{a}/media/cat.png", {"data": b"png", "headers": {"Content-Type": "image/png"}}),
    ("GET", "/api/v2/users/{a}/media/cat.png", {}),
    ("DELETE", "/api/v2/users/{a}/media/cat.png", {}),
]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def get_token(client: Any, client_id: str = "any-client", secret: str = "any-secret") -> dict[str, Any]:
    resp = await client.post(
        TOKEN_URL, data="grant_type=client_credentials", headers={**FORM, "Authorization": basic(client_id, secret)}
    )
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def call(client: Any, method: str, path: str, account: str, token: str | None, **kwargs: Any) -> Any:
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await client.request(method, path.format(a=account), headers=headers, **kwargs)


# -- the token endpoint ------------------------------------------------------------------------


async def test_token_answer_is_rfc6749_and_what_the_sdk_reads(client):
    resp = await client.post(
        TOKEN_URL, data="grant_type=client_credentials", headers={**FORM, "Authorization": basic("id", "secret")}
    )
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["access_token"], str) and len(body["access_token"]) >= 32
    assert body["access_token"] != (await get_token(client, "id", "secret"))["access_token"]


async def test_client_credentials_may_come_in_the_form_body(client):
    resp = await client.post(
        TOKEN_URL, data="grant_type=client_credentials&client_id=me&client_secret=s", headers=FORM
    )
    assert resp.status == 200
    assert (await resp.json())["token_type"] == "Bearer"


@pytest.mark.parametrize(
    "headers, body, status, error",
    [
        (FORM, "grant_type=client_credentials", 401, "invalid_client"),
        ({**FORM, "Authorization": "Basic !!!"}, "grant_type=client_credentials", 401, "invalid_client"),
        ({**FORM, "Authorization": "Bearer x"}, "grant_type=client_credentials", 401, "invalid_client"),
        ({**FORM, "Authorization": basic("id", "s")}, "", 400, "invalid_request"),
        ({**FORM, "Authorization": basic("id", "s")}, "grant_type=password", 400, "unsupported_grant_type"),
        ({**FORM, "Authorization": basic("id", "s")}, "grant_type=a&grant_type=b", 400, "invalid_request"),
        (
            {"Content-Type": "application/json", "Authorization": basic("id", "s")},
            '{"grant_type": "client_credentials"}',
            400,
            "invalid_request",
        ),
    ],
)
async def test_token_errors_are_rfc6749(client, headers, body, status, error):
    resp = await client.post(TOKEN_URL, data=body, headers=headers)
    assert resp.status == status
    answer = await resp.json()
    assert answer["error"] == error
    assert answer["error_description"]
    if status == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Basic")


async def test_token_endpoint_takes_only_post(client):
    resp = await client.get(TOKEN_URL)
    assert resp.status == 405
    assert resp.headers["Allow"] == "POST"


async def test_a_listed_client_needs_its_secret(make_client):
    client = await make_client(SCENARIO)
    resp = await client.post(
        TOKEN_URL, data="grant_type=client_credentials", headers={**FORM, "Authorization": basic("alice-app", "wrong")}
    )
    assert resp.status == 401
    assert (await resp.json())["error"] == "invalid_client"
    assert (await get_token(client, "alice-app", "a-secret"))["expires_in"] == 3600


async def test_a_client_may_have_its_own_lifetime(make_client):
    client = await make_client({**SCENARIO, "oauth": {"tokenLifetime": "2h"}})
    assert (await get_token(client, "bob-app", "b-secret"))["expires_in"] == 300
    assert (await get_token(client, "alice-app", "a-secret"))["expires_in"] == 7200


# -- Bearer on every route ---------------------------------------------------------------------


@pytest.mark.parametrize("method, path, kwargs", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_every_route_takes_a_bearer_token(client, method, path, kwargs):
    token = (await get_token(client))["access_token"]
    resp = await call(client, method, path, "9900000", token, **kwargs)
    assert resp.status not in (401, 403), await resp.text()
    assert resp.status < 500


@pytest.mark.parametrize("method, path, kwargs", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
@pytest.mark.parametrize("token", [None, "", "never-issued"])
async def test_every_route_refuses_a_missing_or_unknown_token(client, method, path, kwargs, token):
    resp = await call(client, method, path, "9900000", token, **kwargs)
    assert resp.status == 401
    assert await resp.json() == {"type": "unauthorized", "description": "Authentication Failed"}
    if token:
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("method, path, kwargs", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_every_route_refuses_another_accounts_token_with_403(make_client, method, path, kwargs):
    client = await make_client(SCENARIO)
    token = (await get_token(client, "alice-app", "a-secret"))["access_token"]
    resp = await call(client, method, path, "2222222", token, **kwargs)
    assert resp.status == 403
    assert await resp.json() == {"type": "forbidden", "description": "Access Denied"}


@pytest.mark.parametrize(
    "client_id, secret, account, status",
    [
        ("alice-app", "a-secret", "1111111", 202),
        ("alice-app", "a-secret", "2222222", 403),  # another account's client
        ("alice-app", "a-secret", "9999999", 403),  # an open account, but alice-app belongs to 1111111
        ("bob-app", "b-secret", "2222222", 202),
        ("stranger", "x", "1111111", 401),  # any client gets a token, but a listing account refuses it
        ("stranger", "x", "3333333", 401),  # an account that lists Basic users lists everyone who may call
        ("stranger", "x", "9999999", 202),  # an account that lists nobody takes any token
    ],
)
async def test_listed_clients(make_client, client_id, secret, account, status):
    client = await make_client(SCENARIO)
    token = (await get_token(client, client_id, secret))["access_token"]
    resp = await call(client, "POST", "/api/v2/users/{a}/messages", account, token, json=BODY)
    assert resp.status == status


@pytest.mark.parametrize("account, status", [("2222222", 202), ("1111111", 403), ("9999999", 403)])
async def test_a_fixed_token_of_the_scenario(make_client, account, status):
    client = await make_client(SCENARIO)
    resp = await call(client, "POST", "/api/v2/users/{a}/messages", account, "fixed-bob-token", json=BODY)
    assert resp.status == status


async def test_basic_credentials_still_work_beside_tokens(make_client):
    client = await make_client(SCENARIO)
    resp = await client.post(
        "/api/v2/users/3333333/messages", json=BODY, headers={"Authorization": basic("carol", "c")}
    )
    assert resp.status == 202
    # An account that lists only OAuth2 clients takes no Basic credentials.
    resp = await client.post("/api/v2/users/1111111/messages", json=BODY, headers={"Authorization": basic("x", "y")})
    assert resp.status == 401


async def test_a_token_follows_the_scenario_in_force(make_client):
    client = await make_client(SCENARIO)
    token = (await get_token(client, "alice-app", "a-secret"))["access_token"]
    changed = {"accounts": [{"id": "1111111", "oauthClients": [{"clientId": "alice-app", "clientSecret": "rotated"}]}]}
    assert (await client.put("/_emulator/scenario", json=changed)).status == 200
    resp = await call(client, "POST", "/api/v2/users/{a}/messages", "1111111", token, json=BODY)
    assert resp.status == 401


# -- lifetime ------------------------------------------------------------------------------------


async def test_a_token_outlives_days_of_virtual_time_by_default(client):
    token = (await get_token(client))["access_token"]
    assert (await client.post("/_emulator/clock/advance", json={"seconds": 30 * 86400})).status == 200
    resp = await call(client, "POST", "/api/v2/users/{a}/messages", "9900000", token, json=BODY)
    assert resp.status == 202


async def test_a_real_clock_token_expires_on_the_wall_clock(client, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(tokens.time, "monotonic", lambda: now[0])
    token = (await get_token(client))["access_token"]
    now[0] += 3599
    assert (await call(client, "GET", "/api/v2/users/{a}/media", "9900000", token)).status == 200
    now[0] += 1
    resp = await call(client, "GET", "/api/v2/users/{a}/media", "9900000", token)
    assert resp.status == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


async def test_a_virtual_clock_token_expires_on_the_virtual_clock(make_client):
    client = await make_client({"oauth": {"tokenLifetime": "10m", "tokenClock": "virtual"}})
    body = await get_token(client)
    assert body["expires_in"] == 600
    await client.post("/_emulator/clock/advance", json={"seconds": 599})
    assert (await call(client, "GET", "/api/v2/users/{a}/media", "9900000", body["access_token"])).status == 200
    await client.post("/_emulator/clock/advance", json={"seconds": 1})
    assert (await call(client, "GET", "/api/v2/users/{a}/media", "9900000", body["access_token"])).status == 401
    # The application's refresh: a new token works again.
    fresh = (await get_token(client))["access_token"]
    assert (await call(client, "GET", "/api/v2/users/{a}/media", "9900000", fresh)).status == 200


def test_the_token_store_stays_bounded(monkeypatch):
    monkeypatch.setattr(TokenStore, "MAX_TOKENS", 5)
    store = TokenStore()
    first = store.issue("c", "s", 3600, "virtual", 0.0)
    issued = [store.issue("c", "s", 3600, "virtual", 0.0) for _ in range(10)]
    assert len(store) == 5
    assert store.lookup(first, 0.0) is None
    assert store.lookup(issued[-1], 0.0) is not None
    # Expired ones go first.
    store = TokenStore()
    short = [store.issue("c", "s", 1, "virtual", 0.0) for _ in range(4)]
    kept = store.issue("c", "s", 3600, "virtual", 0.0)
    store.issue("c", "s", 3600, "virtual", 10.0)
    assert len(store) == 2
    assert store.lookup(kept, 10.0) is not None
    assert all(store.lookup(t, 10.0) is None for t in short)
