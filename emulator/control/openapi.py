"""The OpenAPI 3.1 description of the control API, served at ``/_emulator/openapi.json``.

Kept by hand next to the handlers; a test checks that every control route is described
here and that every response the handlers give matches its schema.
"""

from __future__ import annotations

from typing import Any, get_args

from emulator import __version__
from emulator.delivery.urls import MAX_URL
from emulator.messaging.wire import MAX_HANDSET, MAX_ID, MAX_INBOUND_TEXT, MAX_MEDIA, MAX_MEDIA_URL, MAX_RECIPIENTS
from emulator.scenarios.format import MAX_SCENARIO_BYTES
from emulator.state.media import MAX_CONTENT_TYPE, MAX_FILENAME
from emulator.state.models import CallbackState, CallbackType, Direction, MessageKind, RecipientState
from emulator.web.errors import CONTROL, REQUEST_SIZE_LIMIT
from emulator.web.exposure import OPEN_PATHS
from emulator.web.server import BODY_TIMEOUT


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _q(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema or {"type": "string"}}


# The web page's filters (docs/ui.md, 'What you can do').
UI_FILTERS = [
    _q("accountId", "Only this account's conversations."),
    _q("number", "Conversations with a number containing this."),
    _q("tag", "Messages with this tag."),
    _q("state", "Messages with a recipient in this status (QUEUED ... RECEIVED), or with a callback in cb:STATE."),
    _q("q", "Messages whose text contains this, ignoring case."),
]

NULLABLE_STRING = {"type": ["string", "null"]}
TIME = {"type": "string", "description": "Virtual time, ISO 8601 UTC with milliseconds (Bandwidth's format)."}
NULLABLE_TIME = {"type": ["string", "null"], "description": TIME["description"]}

ACCOUNT_ID = _q("accountId", "Only records of this Bandwidth account.")
WAIT = _q(
    "wait",
    "Long-poll: answer as soon as at least `count` records match the other filters, or after this many "
    "real seconds (at most 60) with what matches then. The answer then carries `conditionMet`.",
    {"type": "number", "minimum": 0, "maximum": 60},
)
COUNT = _q("count", "With `wait`: how many matching records to wait for (default 1).", {"type": "integer", "minimum": 1})

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["type", "description"],
        "properties": {
            "type": {"type": "string", "examples": ["invalid-request", "not-found", "conflict"]},
            "description": {"type": "string"},
            "details": {"description": "Each problem, when there are several."},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"const": "ok"},
            "version": {"type": "string", "description": "The emulator's version, as `bandwidth-emulator --version`."},
            "clock": {"enum": ["manual", "realtime"]},
            "now": TIME,
            "scenario": {"type": "string"},
            "pendingCallbacks": {"type": "integer"},
            "openWaits": {
                "type": "integer",
                "description": "Long-polls (`wait`) waiting now; one whose client hung up is not counted.",
            },
            "internalErrors": {
                "type": "object",
                "description": "Bugs of the emulator's own that it survived: how many, and the last 20.",
                "properties": {
                    "count": {"type": "integer"},
                    "recent": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "time": NULLABLE_TIME,
                                "where": {"type": "string"},
                                "error": {"type": "string"},
                            },
                        },
                    },
                },
            },
            "era": _ref("Era"),
            "retention": {
                "type": "object",
                "description": "What retention keeps (0: no limit) and has forgotten so far (README.md, \"Retention\").",
                "required": ["messages", "forSeconds", "forgottenMessages", "forgottenCallbacks"],
                "properties": {
                    "messages": {"type": "integer", "description": "Messages kept per account."},
                    "forSeconds": {"type": "number", "description": "Virtual seconds a message is kept after it finished."},
                    "forgottenMessages": {"type": "integer"},
                    "forgottenCallbacks": {"type": "integer"},
                },
            },
        },
    },
    "Era": {
        "type": "object",
        "description": "Bandwidth's delivery behaviour a message sent now gets (docs/scenarios.md, \"Bandwidth's timeline\").",
        "required": ["era", "pinned", "deliveryReceiptWindow", "messageSending", "next"],
        "properties": {
            "era": {"enum": ["2020-07-31", "2026-07-06", "2027-01-06"], "description": "The date the era began on Bandwidth."},
            "pinned": {"type": "boolean", "description": "Pinned by the scenario's era, rather than by the virtual date."},
            "deliveryReceiptWindow": {"type": "number", "description": "Seconds until a missing receipt fails with 9902."},
            "messageSending": {"type": "boolean", "description": "Whether MMS and group messages get message-sending."},
            "next": {
                "type": ["object", "null"],
                "description": "The next change on the calendar, unless the era is pinned or none is left.",
                "properties": {"era": {"type": "string"}, "at": TIME},
            },
        },
    },
    "Recipient": {
        "type": "object",
        "required": ["to", "status"],
        "properties": {
            "to": {"type": "string"},
            "status": {"enum": list(get_args(RecipientState))},
            "errorCode": {"type": ["integer", "null"]},
            "description": NULLABLE_STRING,
            "carrierName": NULLABLE_STRING,
            "updatedAt": NULLABLE_TIME,
        },
    },
    "Message": {
        "type": "object",
        "required": ["id", "accountId", "applicationId", "direction", "from", "to", "time", "recipients"],
        "properties": {
            "id": {"type": "string"},
            "accountId": {"type": "string"},
            "applicationId": {"type": "string"},
            "direction": {"enum": list(get_args(Direction))},
            "kind": {"enum": list(get_args(MessageKind))},
            "messageType": {"enum": ["sms", "mms", "rcs"], "description": "As the list API reports it: rcs for RBM."},
            "channel": {
                "enum": ["RBM", "SMS", "MMS", None],
                "description": "Multi-channel messages: the channel it went out (or came in) on; null for plain sends.",
            },
            "from": {"type": "string"},
            "to": {"type": "array", "items": {"type": "string"}},
            "owner": {"type": "string"},
            "time": TIME,
            "text": {"type": "string"},
            "media": {"type": "array", "items": {"type": "string"}},
            "tag": NULLABLE_STRING,
            "priority": {"type": "string"},
            "expiration": NULLABLE_STRING,
            "segmentCount": {"type": "integer"},
            "encoding": {"type": "string"},
            "recipients": {"type": "array", "items": _ref("Recipient")},
            "multichannel": {
                "type": ["object", "null"],
                "description": (
                    "Multi-channel messages (docs/multichannel.md): outbound, `channelList` as accepted and "
                    "`attempts` (each channel tried, with its outcome: delivered, sent, failed, not-capable, "
                    "expired), `readAt` once read; inbound RBM answers: `content`, `suggestionResponse` or "
                    "`locationResponse` as in the callback."
                ),
            },
        },
    },
    "MessageWithCallbacks": {
        "allOf": [
            _ref("Message"),
            {"type": "object", "required": ["callbacks"], "properties": {"callbacks": {"type": "array", "items": _ref("Callback")}}},
        ]
    },
    "Attempt": {
        "type": "object",
        "required": ["time", "statusCode", "error", "durationMs"],
        "properties": {
            "time": TIME,
            "statusCode": {"type": ["integer", "null"], "description": "The webhook's HTTP status; null when there was no answer."},
            "error": {"type": ["string", "null"], "examples": ["timeout", "connection refused"]},
            "durationMs": {"type": "number"},
            "authorization": {"type": "boolean", "description": "Whether Basic credentials were sent."},
            "number": {
                "type": "integer",
                "description": "The scheduled attempt this POST belongs to (1 = first); a challenge-mode 401 and its resend share one.",
            },
            "duplicate": {"type": "boolean", "description": "An extra delivery of a delivered event (the application's duplicates)."},
            "replay": {
                "type": "boolean",
                "description": "Made on demand by POST /_emulator/callbacks/{id}/replay, outside the retry schedule.",
            },
        },
    },
    "Callback": {
        "type": "object",
        "required": ["id", "accountId", "messageId", "type", "recipient", "url", "state", "attempts", "event"],
        "properties": {
            "id": {"type": "string"},
            "accountId": {"type": "string"},
            "messageId": {"type": "string"},
            "applicationId": {"type": "string"},
            "type": {"enum": list(get_args(CallbackType))},
            "recipient": {"type": "string"},
            "channel": {"enum": ["RBM", "SMS", "MMS", None], "description": "Multi-channel messages: the channel the event is about."},
            "url": {"type": ["string", "null"], "description": "null: the application has no callback URL (state skipped)."},
            "state": {"enum": list(get_args(CallbackState))},
            "plannedAt": TIME,
            "nextAttemptAt": NULLABLE_TIME,
            "heldBy": {
                "type": ["string", "null"],
                "description": "ordering hold: the earlier callback (same message and recipient) this one waits for.",
            },
            "attempts": {"type": "array", "items": _ref("Attempt")},
            "event": {"type": "object", "description": "The event exactly as POSTed (one element of the callback array)."},
        },
    },
    "MessageList": {
        "type": "object",
        "required": ["messages"],
        "properties": {
            "messages": {"type": "array", "items": _ref("Message")},
            "conditionMet": {"type": "boolean", "description": "Only with `wait`: whether `count` records matched in time."},
        },
    },
    "CallbackList": {
        "type": "object",
        "required": ["callbacks"],
        "properties": {
            "callbacks": {"type": "array", "items": _ref("Callback")},
            "conditionMet": {"type": "boolean", "description": "Only with `wait`: whether `count` records matched in time."},
        },
    },
    "InboundRequest": {
        "type": "object",
        "required": ["from", "to"],
        "properties": {
            "from": {"type": "string", "minLength": 1, "maxLength": MAX_HANDSET, "description": "The handset's number."},
            "to": {
                "oneOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_RECIPIENTS, "uniqueItems": True},
                ],
                "description": "One of your numbers (E.164), or several for a group message.",
            },
            "text": {
                "type": "string",
                "maxLength": MAX_INBOUND_TEXT,
                "description": "At most the longest concatenated SMS: 255 parts of 153 characters.",
            },
            "media": {
                "type": "array",
                "maxItems": MAX_MEDIA,
                "description": "URLs, or inline files stored by the emulator under {messageId}/{n}/{filename}; "
                "an inline file is at most the scenario's mediaSizeLimit.",
                "items": {
                    "oneOf": [
                        {"type": "string", "maxLength": MAX_MEDIA_URL},
                        {
                            "type": "object",
                            "required": ["content"],
                            "properties": {
                                "content": {"type": "string", "description": "The file, base64."},
                                "contentType": {"type": "string", "maxLength": MAX_CONTENT_TYPE},
                                "filename": {"type": "string", "minLength": 1, "maxLength": MAX_FILENAME},
                            },
                        },
                    ]
                },
            },
            "applicationId": {
                "type": "string",
                "maxLength": MAX_ID,
                "description": "Default: the application owning the number, else the last conversation's.",
            },
            "accountId": {
                "type": "string",
                "maxLength": MAX_ID,
                "description": "Default: the last conversation's account, else the default account.",
            },
        },
    },
    "HandsetReply": {
        "type": "object",
        "additionalProperties": False,
        "description": "One answer: a suggestion (by its text or postbackData), a location, or a text.",
        "properties": {
            "suggestion": {"type": "string", "description": "Tap the suggestion shown with this text."},
            "postbackData": {"type": "string", "description": "Tap the suggestion with this postbackData."},
            "location": {
                "type": "object",
                "required": ["latitude", "longitude"],
                "properties": {
                    "latitude": {"type": ["string", "number"]},
                    "longitude": {"type": ["string", "number"]},
                },
                "description": "Share this location (alone, or with a REQUEST_LOCATION suggestion).",
            },
            "text": {
                "type": "string",
                "maxLength": MAX_INBOUND_TEXT,
                "description": "Type this text (message-received over RBM).",
            },
        },
    },
    "Clock": {
        "type": "object",
        "required": ["mode", "now", "epoch"],
        "properties": {
            "mode": {"enum": ["manual", "realtime"]},
            "now": TIME,
            "epoch": {"type": "number", "description": "The same instant as POSIX seconds."},
            "timeScale": {"type": ["number", "null"]},
            "nextDue": NULLABLE_TIME,
            "pending": {"type": "integer", "description": "Scheduled jobs not yet fired."},
            "era": _ref("Era"),
        },
    },
    "Advance": {
        "type": "object",
        "required": ["seconds"],
        "additionalProperties": False,
        "properties": {"seconds": {"type": "number", "minimum": 0, "maximum": 316224000}},
    },
    "ResetResult": {
        "type": "object",
        "required": ["reset"],
        "properties": {
            "reset": {"type": "string", "description": "The account reset, or `all`."},
            "messages": {"type": "integer"},
            "callbacks": {"type": "integer"},
            "cancelled": {"type": "integer", "description": "Pending callbacks that will now never be sent."},
        },
    },
    "CallbackUrl": {
        "type": "object",
        "required": ["url"],
        "properties": {"url": {"type": ["string", "null"], "maxLength": MAX_URL}},
    },
    "Scenario": {
        "type": "object",
        "description": "The scenario format; `bandwidth-emulator schema` prints its full JSON Schema.",
    },
}

# What every route can answer besides its own: the checks and bounds each request passes
# before its handler (emulator/web/exposure.py, emulator/web/errors.py, emulator/web/server.py;
# docs/security.md), declared on every operation by _complete below.
UNAUTHORIZED = {
    **_error("Started with --control-token, and the request carries neither 'Authorization: Bearer TOKEN' nor the web page's cookie"),
    "headers": {"WWW-Authenticate": {"description": "`Bearer realm=...`", "schema": {"type": "string"}}},
}
FORBIDDEN_HOST = _error("A Host name that a web page could have rebound to the emulator (see --allowed-hosts)")
FORBIDDEN = _error(
    "A Host name that a web page could have rebound to the emulator (see --allowed-hosts), or a browser's "
    "request from a page on another origin (Origin, Sec-Fetch-Site): such a page may not change the emulator's state"
)
TOO_LARGE = _error(
    f"A body above {REQUEST_SIZE_LIMIT // 2**20} MiB: refused from its declared Content-Length before it is read, "
    "or once that much has arrived (type request-entity-too-large)"
)
LATE_BODY = _error(f"The body did not arrive within {BODY_TIMEOUT:g} s of the request's head; the connection is closed")
INTERNAL = _error(
    "An error of the emulator's own (counted in /_emulator/health's internalErrors); with --db, also a change "
    "that could not be written to the file (a full disk), of which nothing is kept"
)
TOO_LARGE_SCENARIO = _error(
    f"A scenario above {MAX_SCENARIO_BYTES // 1024} KiB (docs/scenarios.md, 'Limits'), declared or counted while read; "
    "the old scenario stays"
)
# The operations whose handler reads the body (and so may wait for it).
READS_BODY = {
    ("post", f"{CONTROL}/inbound"),
    ("post", f"{CONTROL}/messages/{{messageId}}/reply"),
    ("post", f"{CONTROL}/messages/{{messageId}}/read"),
    ("post", f"{CONTROL}/clock/advance"),
    ("put", f"{CONTROL}/scenario"),
    ("patch", f"{CONTROL}/scenario"),
    ("put", f"{CONTROL}/callback-url"),
}


def _complete(paths: dict[str, Any]) -> dict[str, Any]:
    """Every operation with the answers of the checks every route makes, in status order."""
    for path, item in paths.items():
        for method, operation in item.items():
            common = {
                "403": FORBIDDEN_HOST if method in ("get", "head", "options") else FORBIDDEN,
                "413": TOO_LARGE,
                "500": INTERNAL,
            }
            if path not in OPEN_PATHS:
                common["401"] = UNAUTHORIZED
            if (method, path) in READS_BODY:
                common["408"] = LATE_BODY
            responses = {**common, **operation["responses"]}
            operation["responses"] = dict(sorted(responses.items()))
    return paths


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "bandwidth-emulator control API",
        "version": __version__,
        "description": "Drive and inspect the emulator from tests and tools. Every error is "
        "`{type, description, details?}`. Times are virtual (see /_emulator/clock).",
    },
    "paths": _complete({
        "/_emulator/health": {
            "get": {"summary": "Liveness and a summary", "responses": {"200": _json(_ref("Health"), "Alive")}}
        },
        "/_emulator/messages": {
            "get": {
                "summary": "Every message, outbound and inbound, oldest first",
                "parameters": [
                    ACCOUNT_ID,
                    _q("direction", "in or out.", {"enum": list(get_args(Direction))}),
                    _q("from", "Exact sender number."),
                    _q("to", "Messages with this number among their recipients."),
                    _q("tag", "Exact tag."),
                    WAIT,
                    COUNT,
                ],
                "responses": {"200": _json(_ref("MessageList"), "The matching messages"), "400": _error("A bad filter")},
            }
        },
        "/_emulator/messages/{messageId}": {
            "get": {
                "summary": "One message with its callbacks and their attempts",
                "parameters": [
                    {"name": "messageId", "in": "path", "required": True, "schema": {"type": "string"}},
                    ACCOUNT_ID,
                ],
                "responses": {
                    "200": _json(_ref("MessageWithCallbacks"), "The message"),
                    "400": _error("An unknown or repeated query parameter"),
                    "404": _error("No such message (in that account)"),
                },
            }
        },
        "/_emulator/messages/{messageId}/reply": {
            "post": {
                "summary": (
                    "The handset answers an RBM message: taps a suggestion (suggestion-response, or "
                    "requested-location-response for a location request), shares its location, or types a text"
                ),
                "parameters": [{"name": "messageId", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("HandsetReply")}}},
                "responses": {
                    "201": _json(
                        {"type": "object", "properties": {"messages": {"type": "array", "items": _ref("Message")}}},
                        "The inbound RBM message, its callback to the inbound webhook planned",
                    ),
                    "400": _error("An invalid body, or no such suggestion on the message (the description lists them)"),
                    "404": _error("No such message"),
                    "409": _error("Not an outbound multi-channel message that went out over RBM, or not delivered yet"),
                },
            }
        },
        "/_emulator/messages/{messageId}/read": {
            "post": {
                "summary": "The handset reads an RBM message now: a message-read status callback",
                "parameters": [{"name": "messageId", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "201": _json(
                        {"type": "object", "properties": {"callback": _ref("Callback")}}, "The message-read callback, planned now"
                    ),
                    "400": _error("A body that is not empty and not a JSON object"),
                    "404": _error("No such message"),
                    "409": _error("Not a delivered RBM message, or already read"),
                },
            }
        },
        "/_emulator/callbacks": {
            "get": {
                "summary": "The callback journal, in planned order",
                "parameters": [
                    ACCOUNT_ID,
                    _q("messageId", "Callbacks of this message."),
                    _q("type", "Event type.", SCHEMAS["Callback"]["properties"]["type"]),
                    _q("state", "Delivery state.", SCHEMAS["Callback"]["properties"]["state"]),
                    _q("recipient", "Callbacks about this recipient."),
                    WAIT,
                    COUNT,
                ],
                "responses": {"200": _json(_ref("CallbackList"), "The matching callbacks"), "400": _error("A bad filter")},
            }
        },
        "/_emulator/callbacks/{callbackId}/replay": {
            "post": {
                "summary": "Deliver this callback again now, journaled as a replay attempt",
                "description": "One POST of the same event (two in challenge mode), added to the callback's attempts "
                "with `replay: true`. The retry schedule, the next attempt and the state are left as they were.",
                "parameters": [{"name": "callbackId", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": _json(_ref("Callback"), "The callback, the replay as its last attempt"),
                    "404": _error("No such callback"),
                    "409": _error("Nothing to replay: no URL, not attempted yet, or its message was reset"),
                },
            }
        },
        "/_emulator/inbound": {
            "post": {
                "summary": "A handset texts one of your numbers",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("InboundRequest")}}},
                "responses": {
                    "201": _json(
                        {"type": "object", "properties": {"messages": {"type": "array", "items": _ref("Message")}}},
                        "One inbound message per number of yours, each with a message-received callback planned",
                    ),
                    "400": _error("An invalid body"),
                },
            }
        },
        "/_emulator/clock": {"get": {"summary": "The virtual clock", "responses": {"200": _json(_ref("Clock"), "The clock")}}},
        "/_emulator/clock/advance": {
            "post": {
                "summary": "Manual clock: move time forward, firing everything due, in order, before answering",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Advance")}}},
                "responses": {
                    "200": _json(_ref("Clock"), "The clock after the advance"),
                    "400": _error("An invalid body"),
                    "409": _error("The clock is realtime"),
                },
            }
        },
        "/_emulator/reset": {
            "post": {
                "summary": "Forget messages, callbacks and media, for one account or all; pending callbacks are cancelled",
                "parameters": [_q("accountId", "Reset only this account; without it, every account.")],
                "responses": {"200": _json(_ref("ResetResult"), "What was forgotten"), "400": _error("A bad parameter")},
            }
        },
        "/_emulator/scenario": {
            "get": {"summary": "The active scenario", "responses": {"200": _json(_ref("Scenario"), "The scenario")}},
            "put": {
                "summary": "Replace the active scenario (YAML or JSON body, validated)",
                "requestBody": {
                    "required": True,
                    "content": {"application/yaml": {"schema": _ref("Scenario")}, "application/json": {"schema": _ref("Scenario")}},
                },
                "responses": {
                    "200": _json(_ref("Scenario"), "The new scenario, as understood"),
                    "400": _error("Invalid; `details` lists each problem with its path, and the old scenario stays"),
                    "413": TOO_LARGE_SCENARIO,
                },
            },
            "patch": {
                "summary": "Change part of the active scenario",
                "description": "The body (YAML or JSON) is laid over the active scenario: objects merge key by key, "
                "`applications` by `id` (keys not given are kept; a new id is added), anything else is replaced, "
                "`null` removes a key. The result is validated as a whole.",
                "requestBody": {
                    "required": True,
                    "content": {"application/yaml": {"schema": {"type": "object"}}, "application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "200": _json(_ref("Scenario"), "The new scenario, as understood"),
                    "400": _error("Invalid; `details` lists each problem with its path, and the old scenario stays"),
                    "413": TOO_LARGE_SCENARIO,
                },
            },
        },
        "/_emulator/callback-url": {
            "get": {
                "summary": "Where callbacks go for applications without callback URLs of their own (--callback-url)",
                "responses": {"200": _json(_ref("CallbackUrl"), "The fallback callback URL")},
            },
            "put": {
                "summary": "Change the fallback callback URL (null: none)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("CallbackUrl")}}},
                "responses": {
                    "200": _json(_ref("CallbackUrl"), "The fallback callback URL now"),
                    "400": _error("Not an absolute http(s) URL"),
                },
            },
        },
        # The web page (docs/ui.md); not JSON, described so that every /_emulator route is here.
        "/_emulator/ui": {
            "get": {
                "summary": "The web page (also served at /)",
                "parameters": [
                    _q("token", "With --control-token: the token, once; the answer sets a cookie and drops it from the address.")
                ],
                "responses": {
                    "200": {"description": "HTML", "content": {"text/html": {}}},
                    "303": {
                        "description": "With the right token=: to the same address without it, setting the token's cookie",
                        "headers": {"Location": {"schema": {"type": "string"}}, "Set-Cookie": {"schema": {"type": "string"}}},
                    },
                },
            }
        },
        "/_emulator/ui/static/{name}": {
            "get": {
                "summary": "The page's script and style sheet",
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"enum": ["app.js", "style.css"]}}],
                "responses": {"200": {"description": "JavaScript or CSS"}, "404": _error("No such file")},
            }
        },
        "/_emulator/ui/changes": {
            "get": {
                "summary": "A counter that moves whenever a message, callback attempt or reset changes the state",
                "responses": {
                    "200": _json(
                        {"type": "object", "required": ["version"], "properties": {"version": {"type": "integer"}}},
                        "The counter",
                    )
                },
            }
        },
        "/_emulator/ui/events": {
            "get": {
                "summary": "Server-sent events for the web page: what changed, as it happens",
                "description": "`hello` (`{version}`) once, then at most every 50 ms a `change` event "
                "`{version, messages: [{id, conversation}], resets: [], resync: false}` naming the messages stored "
                "or changed (a callback attempt names its message), `reset` when an account (`null`: all) was "
                "reset, or `resync` when more changed than the stream keeps (read everything again); a comment "
                "line every 15 s of quiet. It ends when the server stops. At most 32 streams at once.",
                "responses": {
                    "200": {"description": "text/event-stream", "content": {"text/event-stream": {}}},
                    "400": _error("Any query parameter: the stream takes none"),
                    "503": _error("Too many streams open"),
                },
            }
        },
        "/_emulator/ui/conversations": {
            "get": {
                "summary": "A page of the web page's conversations, most recently active first, filtered on the server",
                "parameters": [
                    *UI_FILTERS,
                    _q("limit", "Conversations per page (0 to 200, default 50).", {"type": "integer", "minimum": 0, "maximum": 200}),
                    _q("before", "The `next` of the previous page.", {"type": "integer", "minimum": 1}),
                    _q("count", "1: also count the matching messages (`totals.matching`).", {"enum": ["0", "1"]}),
                    {
                        **_q("key", "Instead of a page: these conversations' rows (repeatable, at most 100); "
                        "those that do not exist or match are in `gone`."),
                        "explode": True,
                    },
                ],
                "responses": {
                    "200": _json({"type": "object"}, "Rows, `next`, `totals`, `accounts` and `tags`"),
                    "400": _error("A bad parameter"),
                },
            }
        },
        "/_emulator/ui/thread": {
            "get": {
                "summary": "The latest matching messages of one conversation, each with its callbacks, oldest first",
                "parameters": [
                    {**_q("conversation", "The conversation's key."), "required": True},
                    *UI_FILTERS,
                    _q("limit", "Messages per page (1 to 200, default 50).", {"type": "integer", "minimum": 1, "maximum": 200}),
                    _q("before", "The `before` of the previous answer: the page before it."),
                ],
                "responses": {
                    "200": _json({"type": "object"}, "`messages` and `before` (null: no earlier page)"),
                    "400": _error("A bad parameter"),
                    "404": _error("No such conversation"),
                },
            }
        },
        "/_emulator/ui/messages": {
            "get": {
                "summary": "These messages (id=, repeatable, at most 100) with their callbacks, if they match the filters",
                "parameters": [*UI_FILTERS, {**_q("id", "A message id (repeatable)."), "explode": True}],
                "responses": {
                    "200": _json({"type": "object"}, "`messages`, and the ids gone or not matching in `gone`"),
                    "400": _error("A bad parameter"),
                },
            }
        },
        "/_emulator/ui/scenario.yaml": {
            "get": {
                "summary": "The active scenario as YAML",
                "responses": {"200": {"description": "YAML", "content": {"application/yaml": {}}}},
            }
        },
        "/_emulator/ui/media/{accountId}/{mediaId}": {
            "get": {
                "summary": "A stored media file without Basic auth, for thumbnails: images inline, anything else as a download",
                "parameters": [
                    {"name": "accountId", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "mediaId", "in": "path", "required": True, "schema": {"type": "string"}, "description": "May hold '/'."},
                ],
                "responses": {"200": {"description": "The file"}, "404": _error("No such media in that account")},
            }
        },
        "/_emulator/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}}}
        },
    }),
    "components": {"schemas": SCHEMAS},
}
