"""The demo chat page (issue 13): its static files at `/` and
`/demo/static/`, and the dev-only endpoints it needs for what a real app gets
from Supabase itself:

- `GET /demo/api/users`: the people to pick from (the seed's Ava, Leo, Mia);
- `POST /demo/api/token` `{ user_id }`: an access token for one of them, as
  Supabase Auth would hand out on sign-in (signed with the JWT secret);
- `POST /demo/api/flow-action` (bearer token): a bid / campaign flow step,
  what the `flow-action` edge function does (the same body), run as the
  signed-in user so the flow's own rules and RLS decide;
- `GET /demo/api/campaigns` (bearer token): the brand owner's campaigns, as
  supabase-js would read them under RLS, to start a campaign chat.

Everything else the page does goes through the documented Socket.IO events
and REST endpoints, as any client. Registered only when `Settings.demo`
(the embedded default or `server.dev`; never in production)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from aiohttp import web

from bridge.auth import mint_token
from bridge.errors import PayloadError
from bridge.payloads import as_uuid
from bridge.rest import IDENTITY, json_body, json_error, public
from bridge.settings import Settings
from bridge.store import Store
from bridge.views import public_user

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
TOKEN_TTL = 3600  # seconds; the page refreshes its token on the socket before then
MAX_USERS = 50
ACTION_CHARS = 50
# No caching: the demo's files change with the package, and they are small.
NO_CACHE = {"Cache-Control": "no-cache"}


class DemoApi:
    def __init__(self, store: Store, *, jwt_secret: str, storage_public_base: str) -> None:
        self.store = store
        self.jwt_secret = jwt_secret
        self.storage_public_base = storage_public_base

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.index),
            web.get("/demo/static/{path:.+}", self.static),
            web.get("/demo/api/users", self.users),
            web.post("/demo/api/token", self.token),
            web.post("/demo/api/flow-action", self.flow_action),
            web.get("/demo/api/campaigns", self.campaigns),
        ]

    @public
    async def index(self, _request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers=NO_CACHE)

    @public
    async def static(self, request: web.Request) -> web.StreamResponse:
        path = (STATIC / request.match_info["path"]).resolve()
        if not path.is_relative_to(STATIC) or not path.is_file():
            return json_error(404, "not_found", "no such file")
        return web.FileResponse(path, headers=NO_CACHE)

    @public
    async def users(self, _request: web.Request) -> web.Response:
        rows = await self.store.pool.fetch(
            "select id, name, role, profile_image_url from public.users order by name limit $1",
            MAX_USERS,
        )
        people = [
            public_user(
                {**dict(r), "id": str(r["id"]), "role": str(r["role"])}, self.storage_public_base
            )
            for r in rows
        ]
        return web.json_response({"users": people})

    @public
    async def token(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        user_id = as_uuid(body.get("user_id"), "user_id")
        if not self.jwt_secret:
            return json_error(
                503, "no_jwt_secret", "no JWT secret is configured (SUPABASE_JWT_SECRET)"
            )
        if not await self.store.user_exists(user_id):
            return json_error(404, "not_found", "no such user")
        expires_at = int(time.time()) + TOKEN_TTL
        return web.json_response(
            {
                "access_token": mint_token(self.jwt_secret, user_id, TOKEN_TTL),
                "token_type": "bearer",
                "expires_in": TOKEN_TTL,
                "expires_at": expires_at,
                "user": {"id": user_id},
            }
        )

    async def flow_action(self, request: web.Request) -> web.Response:
        """The `flow-action` edge function's body: `{ action, conversation_id }`,
        or `{ action: "start_bid", bid_id }`, `{ action: "start_campaign",
        campaign_id, influencer_id }`."""
        user_id = request[IDENTITY].user_id
        body = await json_body(request)
        action = body.get("action")
        if not isinstance(action, str) or not action or len(action) > ACTION_CHARS:
            raise PayloadError("invalid_field", "action must be a flow action's name", "action")
        if action == "start_bid":
            sql, args = "public.start_bid_conversation($1)", [as_uuid(body.get("bid_id"), "bid_id")]
        elif action == "start_campaign":
            sql = "public.start_campaign_conversation($1, $2)"
            args = [
                as_uuid(body.get("campaign_id"), "campaign_id"),
                as_uuid(body.get("influencer_id"), "influencer_id"),
            ]
        else:
            conversation_id = as_uuid(body.get("conversation_id"), "conversation_id")
            sql, args = "public.apply_flow_action($1, $2)", [conversation_id, action]
        async with self.store.as_user(user_id) as conn:
            row = await conn.fetchval(f"select to_jsonb(c) from {sql} c", *args)
        if self.store.on_write is not None:
            self.store.on_write(False)  # the relay announces it now, not at the next doorbell
        conversation = row
        return web.json_response({"ok": True, "conversation": conversation})

    async def campaigns(self, request: web.Request) -> web.Response:
        """The signed-in brand owner's campaigns (RLS decides), to start a
        campaign chat with an influencer from the page."""
        user_id = request[IDENTITY].user_id
        async with self.store.as_user(user_id) as conn:
            rows = await conn.fetch(
                "select id, title from public.campaigns where brand_owner_id = $1"
                " order by created_at, title",
                user_id,
            )
        return web.json_response(
            {"campaigns": [{"id": str(r["id"]), "title": r["title"]} for r in rows]}
        )


def demo_routes(settings: Settings, store: Store, storage_public_base: str) -> list[web.RouteDef]:
    """The demo page's routes when `settings.demo`, else none."""
    if not settings.demo:
        return []
    log.warning(
        "demo page on at / with a dev-only token endpoint (embedded database or server.dev);"
        " never expose this to a network you do not trust"
    )
    api = DemoApi(store, jwt_secret=settings.jwt_secret, storage_public_base=storage_public_base)
    return api.routes()
