"""The local attachment backend: no Storage service (the embedded default),
so the bytes live in files under `attachments.dir` and the bridge itself
serves the signed URLs, at the paths Supabase Storage uses so a client
uploads and reads the same way on both backends:

- `PUT /storage/v1/object/upload/sign/<bucket>/<path>?token=` with the raw
  bytes and their Content-Type (or `multipart/form-data` with the file, as
  storage3 and supabase-js send it); at most `attachments.max_bytes`, of
  the type asked for, once (no overwrite);
- `GET /storage/v1/object/sign/<bucket>/<path>?token=`: the bytes.

Tokens are short-lived HS256 JWTs signed with the project's JWT secret, with
their own audience (a Supabase access token is not one, and the reverse),
naming the one path they are for. Each object is a folder
`<dir>/<bucket>/<conversation>/<uuid>/` holding `object` (the bytes) and
`meta.json` (file name, type, size, who uploaded it), written to temporary
names and renamed, so a half-written upload is never seen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
from aiohttp import BodyPartReader, web

from bridge.attachments import SignedUpload
from bridge.attachments.rules import (
    AttachmentError,
    Rules,
    StoredObject,
    UploadRequest,
    content_type_of,
    too_large,
)
from bridge.rest import public

log = logging.getLogger(__name__)

UPLOAD_AUDIENCE = "chat-bridge:attachment-upload"
READ_AUDIENCE = "chat-bridge:attachment-read"
CHUNK = 64 * 1024


def _bad_token(message: str) -> AttachmentError:
    return AttachmentError("invalid_token", message, 403, "token")


class LocalBackend:
    kind = "local"

    def __init__(
        self, root: str | Path, bucket: str, secret: str, rules: Rules, upload_ttl: float
    ) -> None:
        self.root = Path(root) / bucket
        self.bucket = bucket
        self.secret = secret
        self.rules = rules
        self.upload_ttl = upload_ttl

    async def close(self) -> None:
        return None

    # -- the seam ---------------------------------------------------------------

    async def signed_upload(
        self, path: str, req: UploadRequest, user_id: str, base_url: str
    ) -> SignedUpload:
        expires = time.time() + self.upload_ttl
        token = self._token(UPLOAD_AUDIENCE, path, expires, sub=user_id, ct=req.content_type)
        url = f"{base_url}/storage/v1/object/upload/sign/{self.bucket}/{quote(path)}?token={token}"
        return SignedUpload(url, token, expires)

    async def stat(self, path: str) -> StoredObject | None:
        meta = await asyncio.to_thread(self._read_meta, path)
        if meta is None:
            return None
        return StoredObject(path, int(meta["size"]), str(meta["content_type"]))

    async def signed_read(self, path: str, ttl: int, base_url: str) -> str:
        token = self._token(READ_AUDIENCE, path, time.time() + ttl)
        return f"{base_url}/storage/v1/object/sign/{self.bucket}/{quote(path)}?token={token}"

    async def remove(self, path: str) -> None:
        """The object's folder goes (renamed aside first, so a download never
        sees half of it); nothing there is fine. Only the object stored
        under exactly this path: a path of another shape, or naming another
        file name in the same folder (a supabase-js insert may carry any
        path of its conversation), removes nothing."""
        if await asyncio.to_thread(self._read_meta, path) is None:
            return
        await asyncio.to_thread(self._remove, self._folder(path))

    def _remove(self, folder: Path) -> None:
        doomed = folder.with_name(f".rm-{folder.name}-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(folder, doomed)
        except FileNotFoundError:
            return
        shutil.rmtree(doomed)  # the conversation's folder stays (an upload may be placing into it)

    def routes(self) -> list[web.RouteDef]:
        upload = f"/storage/v1/object/upload/sign/{self.bucket}/{{path:.+}}"
        return [
            web.put(upload, self.upload),
            web.post(upload, self.upload),  # storage3's upload_to_signed_url puts; some POST
            web.get(f"/storage/v1/object/sign/{self.bucket}/{{path:.+}}", self.download),
        ]

    # -- tokens and files ---------------------------------------------------------

    def _token(self, audience: str, path: str, expires: float, **extra: Any) -> str:
        claims = {"aud": audience, "path": path, "exp": int(expires), **extra}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def _claims(self, request: web.Request, audience: str) -> dict[str, Any]:
        token = request.query.get("token")
        if not token:
            raise _bad_token("the signed URL has no token")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self.secret, algorithms=["HS256"], audience=audience
            )
        except jwt.ExpiredSignatureError:
            raise AttachmentError(
                "expired_token", "the signed URL has expired; ask for a new one", 403, "token"
            ) from None
        except jwt.PyJWTError:
            raise _bad_token("the signed URL's token is not valid") from None
        if claims.get("path") != request.match_info["path"]:
            raise _bad_token("the token is for another path")
        return claims

    def _folder(self, path: str) -> Path:
        """`<root>/<conversation>/<uuid>`; the path was signed by us, so its
        shape is ours, but check anyway that it cannot leave the root."""
        parts = path.split("/")
        if len(parts) != 3 or any(p in ("", ".", "..") for p in parts):
            raise AttachmentError("invalid_path", "not an attachment path", 400, "path")
        return self.root / parts[0] / parts[1]

    def _read_meta(self, path: str) -> dict[str, Any] | None:
        try:
            folder = self._folder(path)
        except AttachmentError:
            return None
        try:
            meta: dict[str, Any] = json.loads((folder / "meta.json").read_text())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None
        return meta if meta.get("filename") == path.rsplit("/", 1)[-1] else None

    # -- HTTP -------------------------------------------------------------------------

    @public
    async def upload(self, request: web.Request) -> web.Response:
        claims = self._claims(request, UPLOAD_AUDIENCE)
        path = str(claims["path"])
        folder = self._folder(path)
        if await asyncio.to_thread((folder / "meta.json").exists):
            raise AttachmentError(
                "already_uploaded", "something was already uploaded at this path", 409, "path"
            )
        length = request.content_length
        if length is not None and length > self.rules.max_bytes + CHUNK:  # multipart framing
            raise too_large(self.rules)
        body, content_type = await self._body(request)
        if content_type_of(content_type, self.rules, "Content-Type") != claims.get("ct"):
            raise AttachmentError(
                "type_mismatch",
                f"the upload is {content_type}, not the {claims.get('ct')} asked for",
                415,
                "Content-Type",
            )
        size = await self._store(folder, path, body, content_type, str(claims.get("sub")))
        return web.json_response({"Key": f"{self.bucket}/{path}", "path": path, "size": size})

    async def _body(self, request: web.Request) -> tuple[Any, str]:
        """The bytes' stream and type: the raw body, or the file part of a
        multipart form (storage3, supabase-js with a Blob)."""
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            skipped = 0  # bytes of other fields (cacheControl, metadata): bounded too
            while True:
                part = await reader.next()
                if part is None:
                    raise AttachmentError("missing_file", "the form holds no file", 400, "file")
                if not isinstance(part, BodyPartReader):
                    raise AttachmentError("missing_file", "nested forms are not read", 400, "file")
                if part.filename is not None:
                    return part, part.headers.get("Content-Type", "application/octet-stream")
                while chunk := await part.read_chunk(CHUNK):
                    skipped += len(chunk)
                    if skipped > CHUNK:
                        raise too_large(self.rules)
        return request.content, request.headers.get("Content-Type", "")

    async def _store(self, folder: Path, path: str, body: Any, content_type: str, user: str) -> int:
        """Streams the bytes to a temporary file, at most max_bytes, then
        renames it and its meta.json into place; nothing stays on refusal."""
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        staging = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=self.root, prefix=".up-"))
        try:
            size = 0
            with (staging / "object").open("wb") as out:
                while True:
                    chunk = await (
                        body.read_chunk(CHUNK)
                        if isinstance(body, BodyPartReader)
                        else body.read(CHUNK)
                    )
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > self.rules.max_bytes:
                        raise too_large(self.rules)
                    out.write(chunk)
            if size == 0:
                raise AttachmentError("empty_file", "the upload has no bytes", 400, "file")
            meta = {
                "filename": path.rsplit("/", 1)[-1],
                "content_type": content_type.split(";", 1)[0].strip().lower(),
                "size": size,
                "uploaded_by": user,
                "uploaded_at": time.time(),
                "id": str(uuid.uuid4()),
            }
            (staging / "meta.json").write_text(json.dumps(meta))
            await asyncio.to_thread(self._place, staging, folder)
            return size
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    @staticmethod
    def _place(staging: Path, folder: Path) -> None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staging, folder)  # atomic; fails if another upload won
        except OSError:
            raise AttachmentError(
                "already_uploaded", "something was already uploaded at this path", 409, "path"
            ) from None

    @public
    async def download(self, request: web.Request) -> web.StreamResponse:
        claims = self._claims(request, READ_AUDIENCE)
        path = str(claims["path"])
        meta = await asyncio.to_thread(self._read_meta, path)
        if meta is None:
            raise AttachmentError("not_found", "no such attachment", 404)
        content_type = str(meta["content_type"])
        disposition = "inline" if content_type.startswith("image/") else "attachment"
        response = web.FileResponse(
            self._folder(path) / "object",
            headers={
                "Content-Type": content_type,
                "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(meta['filename'])}",
                # Uploaded bytes never run as a page of the bridge's origin.
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "Cache-Control": "private, max-age=60",
            },
        )
        return response
