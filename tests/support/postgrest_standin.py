"""A local stand-in for PostgREST's `rpc` endpoint (`POST /rest/v1/rpc/<fn>`,
as supabase-js calls it through the Supabase API gateway), faithful to what
PostgREST does with such a request:

- the JWT in `Authorization: Bearer` is verified (HS256 with the project's
  secret, `exp` / `nbf` / `iat` with PostgREST's 30 s clock skew); no token
  means the anon role; a bad one is 401 PGRST301 (cannot be decoded or
  verified) or PGRST303 (claims: expired, not yet valid), with
  `WWW-Authenticate: Bearer error="invalid_token", ...`;
- the function is found in the exposed schema by name and by the names of
  the JSON body's keys (arguments with defaults may be left out), else 404
  PGRST202; `Content-Profile` naming another schema is 406 PGRST106;
- it runs in one transaction on a connection of the `authenticator` role:
  `role`, `request.jwt.claims`, `request.method`, `request.path` and
  `request.headers` set with set_config(..., true), the arguments cast from
  the JSON body with json_to_record, committed on success and rolled back on
  error;
- the answer is the function's result as JSON (an object for a composite, an
  array for a set, the value for a scalar, 204 for void); a database error
  is `{code, details, hint, message}` with the SQLSTATE mapped to a status
  as PostgREST's `mapSQLtoHTTP` does (PostgREST/postgrest,
  src/PostgREST/Error.hs), and a `Proxy-Status: PostgREST; error=<code>`
  header.

Only `rpc` is served: the edge functions of this project call nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg
import jwt
from aiohttp import web

CLOCK_SKEW = 30  # seconds, as PostgREST allows
# The project JWT secret the tests sign with when they stand for PostgREST.
SECRET = "postgrest-standin-secret-at-least-32-characters"


# Not frozen: Python sets __traceback__ on an exception it raises.
@dataclass(eq=False)
class PgrstError(Exception):
    status: int
    code: str
    message: str
    details: str | None = None
    hint: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def status_for_sqlstate(code: str, message: str, authed: bool) -> int:
    """PostgREST's mapping of a PostgreSQL error to an HTTP status."""
    exact = {
        "23503": 409,
        "23505": 409,
        "25006": 405,
        "53400": 500,
        "57P01": 503,
        "P0001": 400,
        "42P01": 404,
        "42P17": 500,
    }
    if code in exact:
        return exact[code]
    if code == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if code == "22023":
        return 401 if message.startswith("role") and message.endswith("does not exist") else 400
    if code == "42883":
        return 406 if message.startswith("function xmlagg(") else 404
    if code == "42501":
        return 403 if authed else 401
    if code.startswith("PT") and code[2:].isdigit():
        return int(code[2:])
    by_class = {
        "08": 503,
        "09": 500,
        "0L": 403,
        "0P": 403,
        "25": 500,
        "28": 403,
        "2D": 500,
        "38": 500,
        "39": 500,
        "3B": 500,
        "40": 500,
        "53": 503,
        "54": 500,
        "55": 500,
        "57": 500,
        "58": 500,
        "F0": 500,
        "HV": 500,
        "P0": 500,
        "XX": 500,
    }
    return by_class.get(code[:2], 400)


def _jwt_error(code: str, message: str) -> PgrstError:
    header = f'Bearer error="invalid_token", error_description="{message}"'
    return PgrstError(401, code, message, headers=(("WWW-Authenticate", header),))


class PostgrestStandIn:
    def __init__(
        self,
        dsn: str,
        jwt_secret: str,
        *,
        schema: str = "public",
        anon_role: str = "anon",
        db_user: str = "authenticator",
    ) -> None:
        # PostgREST logs in as `authenticator` and switches role per request.
        self.dsn = dsn.replace("://postgres@", f"://{db_user}@", 1)
        self.jwt_secret = jwt_secret
        self.schema = schema
        self.anon_role = anon_role
        self.calls: list[tuple[str, str, dict[str, Any]]] = []  # (role, function, args)
        self._pool: asyncpg.Pool | None = None
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> str:
        self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=4)
        app = web.Application()
        app.router.add_post("/rest/v1/rpc/{function}", self._rpc)
        app.router.add_route("*", "/{tail:.*}", self._not_served)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._pool is not None:
            await self._pool.close()

    # -- requests -------------------------------------------------------------

    async def _not_served(self, request: web.Request) -> web.Response:
        return self._error(
            PgrstError(501, "STANDIN", f"the PostgREST stand-in serves rpc only: {request.path}")
        )

    async def _rpc(self, request: web.Request) -> web.Response:
        authed = False
        try:
            claims = self._claims(request.headers.get("Authorization"))
            role = str(claims.get("role", self.anon_role))
            authed = role != self.anon_role
            profile = request.headers.get("Content-Profile")
            if profile is not None and profile != self.schema:
                raise PgrstError(
                    406,
                    "PGRST106",
                    f"Invalid schema: {profile}",
                    hint=f"Only the following schemas are exposed: {self.schema}",
                )
            args = await self._arguments(request)
            name = request.match_info["function"]
            self.calls.append((role, name, args))
            status, body = await self._call(request, role, claims, name, args)
        except PgrstError as exc:
            return self._error(exc)
        except asyncpg.PostgresError as exc:
            code = str(exc.sqlstate)
            message = str(getattr(exc, "message", "") or exc)
            return self._error(
                PgrstError(
                    status_for_sqlstate(code, message, authed),
                    code,
                    message,
                    getattr(exc, "detail", None),
                    getattr(exc, "hint", None),
                )
            )
        if status == 204:
            return web.Response(status=204)
        return web.Response(
            status=status, text=body, content_type="application/json", charset="utf-8"
        )

    def _claims(self, header: str | None) -> dict[str, Any]:
        if header is None:
            return {"role": self.anon_role}
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return {"role": self.anon_role}
        token = token.strip()
        if not token:
            raise _jwt_error("PGRST301", "Empty JWT is sent in Authorization header")
        parts = token.count(".") + 1
        if parts != 3:
            raise _jwt_error("PGRST301", f"Expected 3 parts in JWT; got {parts}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.jwt_secret,
                algorithms=["HS256", "HS384", "HS512"],
                options={"verify_aud": False, "require": []},
                leeway=CLOCK_SKEW,
            )
        except jwt.ExpiredSignatureError:
            raise _jwt_error("PGRST303", "JWT expired") from None
        except jwt.ImmatureSignatureError:
            raise _jwt_error("PGRST303", "JWT not yet valid") from None
        except jwt.InvalidIssuedAtError:
            raise _jwt_error("PGRST303", "JWT issued at future") from None
        except jwt.InvalidAlgorithmError:
            raise _jwt_error("PGRST301", "Wrong or unsupported encoding algorithm") from None
        except jwt.InvalidSignatureError:
            raise _jwt_error("PGRST301", "JWT cryptographic operation failed") from None
        except jwt.InvalidTokenError:
            raise _jwt_error("PGRST301", "JWT couldn't be decoded") from None
        return claims

    async def _arguments(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PgrstError(400, "PGRST102", "Empty or invalid json")
        return body

    async def _call(
        self,
        request: web.Request,
        role: str,
        claims: dict[str, Any],
        name: str,
        args: dict[str, Any],
    ) -> tuple[int, str]:
        assert self._pool is not None
        async with self._pool.acquire() as conn, conn.transaction():
            function = await self._find(conn, name, set(args))
            await conn.execute(
                "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true),"
                " set_config('request.method', 'POST', true),"
                " set_config('request.path', $3, true), set_config('request.headers', $4, true)",
                role,
                json.dumps(claims),
                f"/rpc/{name}",
                json.dumps({k.lower(): v for k, v in request.headers.items()}),
            )
            params = [p for p in function["params"] if p["name"] in args]
            named = ", ".join(f'"{p["name"]}" := _."{p["name"]}"' for p in params)
            record = ", ".join(f'"{p["name"]}" {p["type"]}' for p in params) or "_ text"
            call = f'"{self.schema}"."{name}"({named})'
            source = f"json_to_record($1::json) as _({record})"
            if function["returns_void"]:
                await conn.execute(f"select {call} from {source}", json.dumps(args))
                return 204, ""
            if function["returns_set"]:
                sql = (
                    f"select coalesce(json_agg(pgrst_call), '[]')::text"
                    f" from {source}, lateral {call} pgrst_call"
                )
            elif function["returns_composite"]:
                sql = f"select to_json(pgrst_call)::text from {source}, lateral {call} pgrst_call"
            else:
                sql = f"select to_json({call})::text from {source}"
            body = await conn.fetchval(sql, json.dumps(args))
            return 200, body if body is not None else "null"

    async def _find(self, conn: asyncpg.Connection, name: str, keys: set[str]) -> dict[str, Any]:
        """The schema cache's lookup: a function of that name whose named
        input arguments cover the keys, and whose arguments without a
        default are all given."""
        rows = await conn.fetch(
            """
            select p.oid, coalesce(p.proargnames, '{}') as names,
              coalesce(p.proargmodes, '{}') as modes, p.pronargs, p.pronargdefaults,
              p.proretset, p.prorettype = 'void'::regtype as returns_void,
              t.typtype = 'c' as returns_composite,
              array(select format_type(x, null) from unnest(p.proargtypes) x) as types
            from pg_proc p
            join pg_namespace n on n.oid = p.pronamespace
            join pg_type t on t.oid = p.prorettype
            where n.nspname = $1 and p.proname = $2
            """,
            self.schema,
            name,
        )
        for row in rows:
            # proargmodes is null when every argument is an input; proargnames
            # may be null (unnamed arguments) while modes are not.
            modes = list(row["modes"]) or ["i"] * len(row["names"])
            inputs = [n for n, m in zip(row["names"], modes, strict=False) if m in ("i", "b", "v")][
                : row["pronargs"]
            ]
            if len(inputs) != row["pronargs"] or not all(inputs):
                continue  # unnamed arguments: not callable with a JSON object
            required = set(inputs[: row["pronargs"] - row["pronargdefaults"]])
            if required <= keys <= set(inputs):
                return {
                    "params": [
                        {"name": n, "type": t} for n, t in zip(inputs, row["types"], strict=True)
                    ],
                    "returns_set": row["proretset"],
                    "returns_void": row["returns_void"],
                    "returns_composite": row["returns_composite"],
                }
        listed = ", ".join(sorted(keys))
        qualified = f"{self.schema}.{name}"
        with_params = (
            f" with parameter{'s' if len(keys) > 1 else ''} {listed}"
            if keys
            else " without parameters"
        )
        raise PgrstError(
            404,
            "PGRST202",
            f"Could not find the function {qualified}"
            f"{f'({listed})' if keys else ' without parameters'} in the schema cache",
            details=f"Searched for the function {qualified}{with_params} or with a single"
            " unnamed json/jsonb parameter, but no matches were found in the schema cache.",
        )

    def _error(self, exc: PgrstError) -> web.Response:
        headers = {"Proxy-Status": f"PostgREST; error={exc.code}", **dict(exc.headers)}
        if exc.status == 401 and "WWW-Authenticate" not in headers:
            headers["WWW-Authenticate"] = "Bearer"
        body = {"code": exc.code, "details": exc.details, "hint": exc.hint, "message": exc.message}
        return web.Response(
            status=exc.status,
            text=json.dumps(body),
            content_type="application/json",
            charset="utf-8",
            headers=headers,
        )
