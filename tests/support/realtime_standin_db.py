"""The database side of the Realtime stand-in: Realtime's own schema on the
project, the authorization of private channels, postgres_changes payloads,
and reading feeds in commit order."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

# What Realtime's tenant migrations create (priv/repo/tenant_schema/realtime),
# less the partitioning; plus a sequence column the stand-in reads in order.
REALTIME_SCHEMA = """
create schema if not exists realtime;
grant usage on schema realtime to anon, authenticated, service_role;
create table if not exists realtime.messages (
  topic text not null, extension text not null, payload jsonb, event text,
  private boolean default false, updated_at timestamp not null default now(),
  inserted_at timestamp not null default now(),
  id uuid not null default gen_random_uuid(),
  standin_seq bigint generated always as identity,
  primary key (id, inserted_at));
alter table realtime.messages enable row level security;
grant insert, select, update on realtime.messages to anon, authenticated, service_role;
create or replace function realtime.topic() returns text language sql stable as $$
  select nullif(current_setting('realtime.topic', true), '')::text $$;
create or replace function realtime.send(
  payload jsonb, event text, topic text, private boolean default true)
returns void language plpgsql as $f$
declare
  generated_id uuid;
  final_payload jsonb;
begin
  begin
    generated_id := gen_random_uuid();
    if payload ? 'id' then final_payload := payload;
    else final_payload := jsonb_set(payload, '{id}', to_jsonb(generated_id)); end if;
    execute format('SET LOCAL realtime.topic TO %L', topic);
    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (generated_id, final_payload, event, topic, private, 'broadcast');
  exception when others then
    raise warning 'WarnSendingBroadcastMessage: %', SQLERRM;
  end;
end
$f$;
"""


async def may_read(conn: asyncpg.Connection, claims: dict[str, Any], sub_topic: str) -> bool:
    """Realtime's Authorization: as the token's role, insert a probe
    broadcast row for the topic and read it back, then roll back."""
    probe = uuid.uuid4()
    try:
        async with conn.transaction():
            await conn.execute(
                "select set_config('role', $1, true), set_config('realtime.topic', $2, true),"
                " set_config('request.jwt.claims', $3, true)",
                str(claims.get("role")),
                sub_topic,
                json.dumps(claims),
            )
            await conn.execute(
                "insert into realtime.messages (id, topic, extension, private)"
                " values ($1, $2, 'broadcast', true)",
                probe,
                sub_topic,
            )
            seen = await conn.fetchval(
                "select count(*) from realtime.messages where id = $1", probe
            )
            raise _Rollback(bool(seen))
    except _Rollback as outcome:
        return outcome.allowed
    except asyncpg.PostgresError:
        return False


def outbox_insert(row: asyncpg.Record) -> dict[str, Any]:
    """A postgres_changes INSERT of bridge.outbox, as the poller sends it."""
    return {
        "schema": "bridge",
        "table": "outbox",
        "commit_timestamp": row["created_at"].isoformat(),
        "type": "INSERT",
        "errors": None,
        "columns": [
            {"name": "id", "type": "int8"},
            {"name": "topic", "type": "text"},
            {"name": "conversation_id", "type": "uuid"},
        ],
        "record": {
            "id": row["id"],
            "topic": row["topic"],
            "conversation_id": row["conversation_id"],
        },
    }


class Unseen:
    """Which rows a feed has sent, by a number handed out at insert. Those
    numbers commit out of order, so "after the last one seen" would skip a
    row whose transaction committed later; Realtime reads the WAL in commit
    order and never skips one. So the feed looks back WINDOW numbers."""

    WINDOW = 10_000

    def __init__(self, start: int = 0) -> None:
        self.start = start  # there before the stand-in: never sent
        self.high = start
        self.seen: set[int] = set()

    @property
    def low(self) -> int:
        return max(self.start, self.high - self.WINDOW)

    def saw(self, numbers: list[int]) -> None:
        self.seen.update(numbers)
        self.high = max([self.high, *numbers])
        low = self.low
        self.seen = {n for n in self.seen if n > low}


class _Rollback(Exception):
    def __init__(self, allowed: bool) -> None:
        super().__init__()
        self.allowed = allowed
