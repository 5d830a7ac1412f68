"""REST routes of blocks, reports, mutes and quiet hours (the same rules and
answers as their socket events; errors `{ error: { code, message } }`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bridge.errors import PayloadError
from bridge.payloads import as_uuid
from bridge.rest import IDENTITY, json_body
from bridge.safety import payloads
from bridge.safety.store import SafetyStore

# Called with (user, other, blocked) after a block or unblock: the socket
# side shows each the other offline, or their status again.
BlockChanged = Callable[[str, str, bool], Awaitable[None]]


class SafetyRoutes:
    def __init__(self, safety: SafetyStore, block_changed: BlockChanged) -> None:
        self.safety = safety
        self.block_changed = block_changed

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/blocks", self.blocks),
            web.post("/api/blocks", self.block),
            web.delete("/api/blocks/{user_id}", self.unblock),
            web.post("/api/reports", self.report),
            web.put("/api/conversations/{id}/mute", self.mute),
            web.delete("/api/conversations/{id}/mute", self.unmute),
            web.get("/api/quiet-hours", self.get_quiet_hours),
            web.put("/api/quiet-hours", self.put_quiet_hours),
            web.delete("/api/quiet-hours", self.clear_quiet_hours),
        ]

    async def blocks(self, request: web.Request) -> web.Response:
        return web.json_response({"blocks": await self.safety.blocks(request[IDENTITY].user_id)})

    async def block(self, request: web.Request) -> web.Response:
        user_id = request[IDENTITY].user_id
        other = payloads.block_target(await json_body(request), user_id)
        block = await self.safety.block(user_id, other)
        await self.block_changed(user_id, other, True)
        return web.json_response({"ok": True, "block": block}, status=201)

    async def unblock(self, request: web.Request) -> web.Response:
        user_id = request[IDENTITY].user_id
        other = payloads.block_target(request.match_info["user_id"], user_id)
        removed = await self.safety.unblock(user_id, other)
        if removed and not await self.safety.blocked_between(user_id, other):
            await self.block_changed(user_id, other, False)
        return web.json_response({"ok": True, "unblocked": removed})

    async def report(self, request: web.Request) -> web.Response:
        report = payloads.report(await json_body(request))
        report_id = await self.safety.report(request[IDENTITY].user_id, report)
        return web.json_response({"ok": True, "report_id": report_id}, status=201)

    async def mute(self, request: web.Request) -> web.Response:
        conversation_id = as_uuid(request.match_info["id"], "id")
        body = await json_body(request) if request.can_read_body else {}
        mute = payloads.mute({**body, "conversationId": conversation_id})
        return web.json_response(
            {"ok": True, **await self.safety.mute(request[IDENTITY].user_id, mute)}
        )

    async def unmute(self, request: web.Request) -> web.Response:
        conversation_id = as_uuid(request.match_info["id"], "id")
        removed = await self.safety.unmute(request[IDENTITY].user_id, conversation_id)
        return web.json_response(
            {"ok": True, "conversation_id": conversation_id, "unmuted": removed}
        )

    async def get_quiet_hours(self, request: web.Request) -> web.Response:
        hours = await self.safety.quiet_hours(request[IDENTITY].user_id)
        return web.json_response({"quiet_hours": hours})

    async def put_quiet_hours(self, request: web.Request) -> web.Response:
        hours = payloads.quiet_hours(await json_body(request))
        if hours is None:
            raise PayloadError("missing_field", "start, end and timeZone are required", "start")
        saved = await self.safety.set_quiet_hours(request[IDENTITY].user_id, hours)
        return web.json_response({"ok": True, "quiet_hours": saved})

    async def clear_quiet_hours(self, request: web.Request) -> web.Response:
        await self.safety.set_quiet_hours(request[IDENTITY].user_id, None)
        return web.json_response({"ok": True, "quiet_hours": None})
