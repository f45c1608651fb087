"""Every route, in one flat table."""

from __future__ import annotations

from aiohttp import web

from emulator.control import api as control
from emulator.control import ui
from emulator.messaging import media, messages
from emulator.multichannel import control as handset
from emulator.multichannel import handlers as multichannel
from emulator.web import oauth
from emulator.web.errors import CONTROL, guarded, unmatched
from emulator.web.exposure import checked

API = "/api/v2/users/{accountId}"
# Any characters, newlines too: media ids hold '/', raw or %2F-encoded (docs/bandwidth-behaviour.md, 'Media').
MEDIA_ID = r"{mediaId:[\s\S]+}"


def setup_routes(app: web.Application) -> None:
    routes = [
        # Bandwidth Messaging v2
        web.post(f"{API}/messages", messages.create_message),
        # Multi-channel (RBM with SMS/MMS fallback): its own error envelope, 405 included.
        web.post(f"{API}/messages/multiChannel", multichannel.create_multi_channel_message),
        web.route("*", f"{API}/messages/multiChannel", multichannel.method_not_allowed),
        web.get(f"{API}/messages", messages.list_messages),
        web.get(f"{API}/media", media.list_media),
        web.get(f"{API}/media/" + MEDIA_ID, media.get_media),
        web.put(f"{API}/media/" + MEDIA_ID, media.upload_media),
        web.delete(f"{API}/media/" + MEDIA_ID, media.delete_media),
        # OAuth2 client credentials (Bandwidth serves it on api.bandwidth.com)
        web.post(oauth.TOKEN_PATH, oauth.issue_token),
        # Control API
        web.get(f"{CONTROL}/health", control.health),
        web.get(f"{CONTROL}/messages", control.list_messages),
        web.get(f"{CONTROL}/messages/{{messageId}}", control.get_message),
        web.post(f"{CONTROL}/messages/{{messageId}}/reply", handset.reply),
        web.post(f"{CONTROL}/messages/{{messageId}}/read", handset.read),
        web.get(f"{CONTROL}/callbacks", control.list_callbacks),
        web.post(f"{CONTROL}/callbacks/{{callbackId}}/replay", control.replay_callback),
        web.post(f"{CONTROL}/inbound", control.inbound),
        web.get(f"{CONTROL}/clock", control.get_clock),
        web.post(f"{CONTROL}/clock/advance", control.advance_clock),
        web.post(f"{CONTROL}/reset", control.reset),
        web.get(f"{CONTROL}/scenario", control.get_scenario),
        web.put(f"{CONTROL}/scenario", control.put_scenario),
        web.patch(f"{CONTROL}/scenario", control.patch_scenario),
        web.get(f"{CONTROL}/callback-url", control.get_callback_url),
        web.put(f"{CONTROL}/callback-url", control.put_callback_url),
        web.get(f"{CONTROL}/openapi.json", control.openapi),
        # Web UI
        web.get("/", ui.index),
        web.get(f"{CONTROL}/ui", ui.index),
        web.get(f"{CONTROL}/ui/static/{{name}}", ui.asset),
        web.get(f"{CONTROL}/ui/changes", ui.changes),
        web.get(f"{CONTROL}/ui/events", ui.events),
        web.get(f"{CONTROL}/ui/conversations", ui.conversations),
        web.get(f"{CONTROL}/ui/thread", ui.thread),
        web.get(f"{CONTROL}/ui/messages", ui.messages),
        web.get(f"{CONTROL}/ui/scenario.yaml", ui.scenario_yaml),
        web.get(f"{CONTROL}/ui/media/{{accountId}}/{{mediaId:.+}}", ui.media),
        # Last: whatever no route above takes (404, or 405 when the path exists).
        web.route("*", "/{tail:.*}", unmatched),
    ]
    app.router.add_routes(web.route(r.method, r.path, guarded(checked(r.handler)), **r.kwargs) for r in routes)
