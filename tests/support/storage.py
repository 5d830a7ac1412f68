"""A local stand-in for Supabase Storage (storage-api), for the hosted
attachment backend: the routes storage3 and supabase-js use, with
storage-api's wire shapes and failures.

- `GET/POST/PUT /storage/v1/bucket[/<id>]`: buckets with `public`,
  `file_size_limit`, `allowed_mime_types`;
- `POST /storage/v1/object/upload/sign/<bucket>/<path>` → `{ url }`
  (`/object/upload/sign/...?token=`), a JWT signed with the project's JWT
  secret (`url: "<bucket>/<path>"`, 2 h), refused (409 `Duplicate`) if the
  object exists;
- `PUT` (or `POST`) `/storage/v1/object/upload/sign/<bucket>/<path>?token=`:
  multipart (storage3, supabase-js with a Blob: the file part) or the raw
  body with its Content-Type; the bucket's size limit (413 `Payload too
  large`) and MIME list (415 `invalid_mime_type`) enforced, once per path;
  → `{ Key, Id }`;
- `POST /storage/v1/object/sign/<bucket>/<path>` `{ expiresIn }` →
  `{ signedURL }` (`/object/sign/...?token=`); a missing object is 404
  `not_found`;
- `GET /storage/v1/object/sign/<bucket>/<path>?token=`: the bytes; a bad
  or expired token is 400 `InvalidJWT`;
- `GET /storage/v1/object/info/<bucket>/<path>`: the object's `size`,
  `content_type`, `metadata` (`size`, `mimetype`);
- `DELETE /storage/v1/object/<bucket>` `{ prefixes: [path, ...] }` (1 to
  1000 names; storage3's `remove`): deletes those that exist and answers
  200 with the deleted objects' rows (`[]` when none existed).

Errors are storage-api's: HTTP 400 with `{ statusCode, error, message }`,
`statusCode` the real status as a string (its legacy `userStatusCode`);
storage3 raises StorageApiError from that body. The API routes want the
service role key as `Authorization: Bearer` (the signed URLs carry their
own token). `fail_with(status)` makes every API call fail (Storage down).
Objects live in memory; there is no storage.objects table behind it (the
service role bypasses RLS anyway; the policies are tested on a real
Supabase schema).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import BodyPartReader, web

SIGNED_UPLOAD_SECONDS = 2 * 3600


@dataclass
class StoredFile:
    data: bytes
    content_type: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: float = field(default_factory=time.time)


def storage_error(status: int, error: str, message: str) -> web.Response:
    return web.json_response(
        {"statusCode": str(status), "error": error, "message": message}, status=400
    )


class StorageStandIn:
    def __init__(self, service_key: str, jwt_secret: str) -> None:
        self.service_key = service_key
        self.secret = jwt_secret
        self.buckets: dict[str, dict[str, Any]] = {}
        self.objects: dict[tuple[str, str], StoredFile] = {}
        self.requests: list[tuple[str, str]] = []
        self.failing: int | None = None
        self.runner: web.AppRunner | None = None
        self.url = ""

    def fail_with(self, status: int | None) -> None:
        """Every API call answers `status` (None: work again)."""
        self.failing = status

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        v1 = "/storage/v1"
        app.add_routes(
            [
                web.get(f"{v1}/bucket/{{id}}", self.get_bucket),
                web.post(f"{v1}/bucket", self.create_bucket),
                web.put(f"{v1}/bucket/{{id}}", self.update_bucket),
                web.post(f"{v1}/object/upload/sign/{{bucket}}/{{path:.+}}", self.sign_upload),
                web.put(f"{v1}/object/upload/sign/{{bucket}}/{{path:.+}}", self.upload),
                web.post(f"{v1}/object/sign/{{bucket}}/{{path:.+}}", self.sign_read),
                web.get(f"{v1}/object/sign/{{bucket}}/{{path:.+}}", self.download),
                web.get(f"{v1}/object/info/{{bucket}}/{{path:.+}}", self.info),
                web.delete(f"{v1}/object/{{bucket}}", self.remove),
            ]
        )
        app.middlewares.append(self._record)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        return await handler(request)

    # -- auth -------------------------------------------------------------------

    def _refuse(self, request: web.Request) -> web.Response | None:
        """The API routes: the service role key, and the injected outage."""
        if self.failing is not None:
            return storage_error(self.failing, "InternalError", "storage is unavailable")
        if request.headers.get("Authorization") != f"Bearer {self.service_key}":
            return storage_error(403, "Unauthorized", "invalid signature")
        return None

    def _checked_token(self, request: web.Request) -> web.Response | dict[str, Any]:
        bucket, path = request.match_info["bucket"], request.match_info["path"]
        token = request.query.get("token")
        if not token:
            return storage_error(400, "InvalidJWT", "Missing token")
        try:
            claims: dict[str, Any] = jwt.decode(token, self.secret, algorithms=["HS256"])
        except jwt.ExpiredSignatureError:
            return storage_error(400, "InvalidJWT", "jwt expired")
        except jwt.PyJWTError:
            return storage_error(400, "InvalidJWT", "invalid signature")
        if claims.get("url") != f"{bucket}/{path}":
            return storage_error(400, "InvalidSignature", "The url do not match the signature")
        return claims

    # -- buckets ------------------------------------------------------------------

    async def get_bucket(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        bucket = self.buckets.get(request.match_info["id"])
        if bucket is None:
            return storage_error(404, "Bucket not found", "Bucket not found")
        return web.json_response(bucket)

    async def create_bucket(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        body = await request.json()
        if body["id"] in self.buckets:
            return storage_error(409, "Duplicate", "The resource already exists")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.buckets[body["id"]] = {
            "id": body["id"],
            "name": body.get("name") or body["id"],
            "owner": "",
            "public": bool(body.get("public", False)),
            "file_size_limit": body.get("file_size_limit"),
            "allowed_mime_types": body.get("allowed_mime_types"),
            "created_at": now,
            "updated_at": now,
        }
        return web.json_response({"name": body["id"]})

    async def update_bucket(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        bucket = self.buckets.get(request.match_info["id"])
        if bucket is None:
            return storage_error(404, "Bucket not found", "Bucket not found")
        body = await request.json()
        for key in ("public", "file_size_limit", "allowed_mime_types"):
            if key in body:
                bucket[key] = body[key]
        return web.json_response({"message": "Successfully updated"})

    # -- objects --------------------------------------------------------------------

    def _bucket_of(self, request: web.Request) -> dict[str, Any] | None:
        return self.buckets.get(request.match_info["bucket"])

    async def sign_upload(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        bucket, path = request.match_info["bucket"], request.match_info["path"]
        if self._bucket_of(request) is None:
            return storage_error(404, "Bucket not found", "Bucket not found")
        if (bucket, path) in self.objects and request.headers.get("x-upsert") != "true":
            return storage_error(409, "Duplicate", "The resource already exists")
        token = jwt.encode(
            {
                "owner": None,
                "url": f"{bucket}/{path}",
                "upsert": False,
                "exp": int(time.time()) + SIGNED_UPLOAD_SECONDS,
            },
            self.secret,
            algorithm="HS256",
        )
        return web.json_response({"url": f"/object/upload/sign/{bucket}/{path}?token={token}"})

    async def upload(self, request: web.Request) -> web.Response:
        checked = self._checked_token(request)
        if isinstance(checked, web.Response):
            return checked
        bucket_id, path = request.match_info["bucket"], request.match_info["path"]
        bucket = self._bucket_of(request)
        if bucket is None:
            return storage_error(404, "Bucket not found", "Bucket not found")
        if (bucket_id, path) in self.objects and not checked.get("upsert"):
            return storage_error(409, "Duplicate", "The resource already exists")
        data, content_type = await self._file(request)
        limit = bucket.get("file_size_limit")
        if limit is not None and len(data) > int(limit):
            return storage_error(
                413, "Payload too large", "The object exceeded the maximum allowed size"
            )
        allowed = bucket.get("allowed_mime_types")
        if allowed and content_type not in allowed:
            return storage_error(
                415, "invalid_mime_type", f"mime type {content_type} is not supported"
            )
        stored = StoredFile(data, content_type)
        self.objects[(bucket_id, path)] = stored
        return web.json_response({"Key": f"{bucket_id}/{path}", "Id": stored.id})

    @staticmethod
    async def _file(request: web.Request) -> tuple[bytes, str]:
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if isinstance(part, BodyPartReader) and part.filename is not None:
                    kind = part.headers.get("Content-Type", "application/octet-stream")
                    return bytes(await part.read()), kind.split(";")[0].strip()
                if isinstance(part, BodyPartReader):
                    await part.release()
            return b"", "application/octet-stream"
        return await request.read(), request.content_type

    async def sign_read(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        bucket, path = request.match_info["bucket"], request.match_info["path"]
        if (bucket, path) not in self.objects:
            return storage_error(404, "not_found", "Object not found")
        body = await request.json()
        expires_in = int(body["expiresIn"])
        token = jwt.encode(
            {"url": f"{bucket}/{path}", "exp": int(time.time()) + expires_in},
            self.secret,
            algorithm="HS256",
        )
        return web.json_response({"signedURL": f"/object/sign/{bucket}/{path}?token={token}"})

    async def download(self, request: web.Request) -> web.Response:
        checked = self._checked_token(request)
        if isinstance(checked, web.Response):
            return checked
        stored = self.objects.get((request.match_info["bucket"], request.match_info["path"]))
        if stored is None:
            return storage_error(404, "not_found", "Object not found")
        return web.Response(body=stored.data, content_type=stored.content_type)

    async def info(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        bucket, path = request.match_info["bucket"], request.match_info["path"]
        stored = self.objects.get((bucket, path))
        if stored is None:
            return storage_error(404, "not_found", "Object not found")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stored.created_at))
        return web.json_response(
            {
                "id": stored.id,
                "name": path,
                "version": stored.id,
                "bucket_id": bucket,
                "size": len(stored.data),
                "content_type": stored.content_type,
                "cache_control": "max-age=3600",
                "etag": f'"{uuid.uuid5(uuid.NAMESPACE_OID, stored.id).hex}"',
                "metadata": {
                    "size": len(stored.data),
                    "mimetype": stored.content_type,
                    "eTag": "",
                },
                "last_modified": stamp,
                "created_at": stamp,
            }
        )

    async def remove(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        bucket = request.match_info["bucket"]
        if bucket not in self.buckets:
            return storage_error(404, "Bucket not found", "Bucket not found")
        try:
            body = await request.json()
        except ValueError:
            return storage_error(400, "Bad Request", "body must be JSON")
        prefixes = body.get("prefixes") if isinstance(body, dict) else None
        if (
            not isinstance(prefixes, list)
            or not 1 <= len(prefixes) <= 1000
            or not all(isinstance(p, str) for p in prefixes)
        ):
            return storage_error(
                400, "Bad Request", "body/prefixes must NOT have fewer than 1 items"
            )
        deleted = []
        for name in prefixes:
            stored = self.objects.pop((bucket, name), None)
            if stored is None:
                continue
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stored.created_at))
            deleted.append(
                {
                    "bucket_id": bucket,
                    "name": name,
                    "id": stored.id,
                    "owner": None,
                    "updated_at": stamp,
                    "created_at": stamp,
                    "last_accessed_at": stamp,
                    "metadata": {"size": len(stored.data), "mimetype": stored.content_type},
                }
            )
        return web.json_response(deleted)
