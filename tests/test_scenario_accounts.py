"""Accounts and credentials: any Basic credentials by default, or only the listed ones."""

from __future__ import annotations

import base64

import pytest

from emulator.scenarios.format import parse_scenario
from emulator.web.auth import FORBIDDEN, UNAUTHORIZED, Authenticator, Verdict, check_access

BODY = {"applicationId": "app", "from": "+15554443333", "to": ["+15551230001"], "text": "hi"}

SCENARIO = {
    "accounts": [
        {"id": "1111111", "credentials": [{"username": "alice", "password": "a-secret"}]},
        {"id": "2222222", "credentials": [{"username": "bob", "password": "b-secret"}, {"username": "ci", "password": "c"}]},
        {"id": "3333333", "rateLimit": {"segmentsPerMinute": 600}},
    ]
}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def post(client, account: str, user: str, password: str):
    return await client.post(f"/api/v2/users/{account}/messages", json=BODY, headers=basic(user, password))


async def test_any_credentials_by_default(make_client):
    client = await make_client()
    assert (await post(client, "9900000", "anyone", "anything")).status == 202


@pytest.mark.parametrize(
    "account, user, password, status",
    [
        ("1111111", "alice", "a-secret", 202),
        ("2222222", "ci", "c", 202),
        ("1111111", "alice", "wrong", 401),
        ("1111111", "mallory", "x", 401),
        ("1111111", "bob", "b-secret", 403),  # a real user, of another account
        ("2222222", "alice", "a-secret", 403),
        # Accounts without listed credentials take any, except another account's user.
        ("3333333", "anyone", "x", 202),
        ("9999999", "anyone", "x", 202),
        ("9999999", "alice", "a-secret", 403),
    ],
)
async def test_listed_credentials(make_client, account, user, password, status):
    client = await make_client(SCENARIO)
    resp = await post(client, account, user, password)
    assert resp.status == status
    if status == 401:
        assert await resp.json() == {"type": "unauthorized", "description": "Authentication Failed"}
    if status == 403:
        assert await resp.json() == {"type": "forbidden", "description": "Access Denied"}


def test_wildcard_account_guards_every_unlisted_account():
    scenario = parse_scenario(
        {"accounts": [{"id": "1111111", "credentials": [{"username": "alice", "password": "a"}]},
                      {"id": "*", "credentials": [{"username": "team", "password": "t"}]}]}
    )
    assert check_access(scenario, "5555555", "team", "t") is None
    assert check_access(scenario, "5555555", "someone", "x") == 401
    assert check_access(scenario, "5555555", "alice", "a") == 403
    assert check_access(scenario, "1111111", "alice", "a") is None


async def test_credentials_follow_a_scenario_replaced_at_runtime(make_client):
    client = await make_client()
    assert (await post(client, "1111111", "anyone", "x")).status == 202
    resp = await client.put("/_emulator/scenario", json=SCENARIO)
    assert resp.status == 200, await resp.text()
    assert (await post(client, "1111111", "anyone", "x")).status == 401


def test_verdicts_say_who_was_let_in_or_why_not():
    scenario = parse_scenario(SCENARIO)
    auth = Authenticator()

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    assert auth.verdict(scenario, basic("alice", "a-secret"), "1111111") == Verdict(username="alice")
    assert auth.verdict(scenario, basic("alice", "a-secret"), "2222222") is FORBIDDEN
    assert auth.verdict(scenario, basic("alice", "wrong"), "1111111") is UNAUTHORIZED
    assert auth.verdict(scenario, "Bearer x", "1111111") is UNAUTHORIZED
    assert auth.verdict(scenario, basic("anyone", "x"), "4444444") == Verdict(username="anyone")
