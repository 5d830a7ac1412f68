"""The Supabase Storage attachment backend: the `supabase` package's Storage
client (storage3) with the service role key, on a private bucket.

- before the first upload URL: the bucket is created if missing (private)
  and its size and MIME limits set from `attachments.max_bytes` /
  `allowed_types`, so Storage itself refuses an oversize or wrong-typed
  upload (the bridge checks again when a message names the object);
- an upload URL is Storage's signed upload URL
  (`POST /object/upload/sign/<bucket>/<path>`: valid 2 hours, one upload,
  no overwrite); a read URL is `POST /object/sign/<bucket>/<path>` with
  `attachments.read_ttl`; what was uploaded is `GET /object/info/...`.

Storage that cannot be reached (or answers 5xx) is `storage_unavailable`,
retryable, one warning line a minute, no traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
from aiohttp import web
from storage3 import AsyncStorageClient
from storage3.exceptions import StorageApiError
from storage3.utils import StorageException

from bridge.attachments import SignedUpload
from bridge.attachments.rules import AttachmentError, Rules, StoredObject, UploadRequest
from bridge.errors import BridgeError
from bridge.logs import Noise

log = logging.getLogger(__name__)
TROUBLE = Noise()
# Storage's signed upload URLs are valid this long (storage-api, fixed).
UPLOAD_URL_SECONDS = 2 * 3600
TIMEOUT = 10.0


def unavailable() -> BridgeError:
    return BridgeError(
        "file storage cannot be reached; try again",
        code="storage_unavailable",
        status=503,
        retryable=True,
    )


def _status(exc: StorageApiError) -> int:
    try:
        return int(exc.status)
    except (TypeError, ValueError):
        return 500


class StorageBackend:
    kind = "storage"

    def __init__(self, supabase_url: str, service_key: str, bucket: str, rules: Rules) -> None:
        headers = {"apikey": service_key, "Authorization": f"Bearer {service_key}"}
        self.http = httpx.AsyncClient(headers=headers, timeout=TIMEOUT)
        self.client = AsyncStorageClient(
            f"{supabase_url.rstrip('/')}/storage/v1/", headers, http_client=self.http
        )
        self.bucket_id = bucket
        self.bucket = self.client.from_(bucket)
        self.rules = rules
        self._bucket_ready = False
        self._bucket_lock = asyncio.Lock()

    async def _ensure_bucket(self) -> None:
        """The bucket, private, with the settings' limits: made or updated
        once, before the first upload URL (so a bridge whose clients never
        attach anything never calls Storage, and Storage away at start-up
        costs nothing); a failure is tried again at the next upload."""
        if self._bucket_ready:
            return
        async with self._bucket_lock:
            if self._bucket_ready:
                return
            options: Any = {
                "public": False,
                "file_size_limit": self.rules.max_bytes,
                "allowed_mime_types": list(self.rules.allowed_types),
            }
            try:
                try:
                    await self.client.get_bucket(self.bucket_id)
                except StorageApiError as exc:
                    if _status(exc) != 404:
                        raise
                    await self.client.create_bucket(self.bucket_id, options=options)
                    log.info("created the private Storage bucket %s", self.bucket_id)
                else:
                    await self.client.update_bucket(self.bucket_id, options)
            except (StorageException, httpx.HTTPError, ValueError) as exc:
                raise self._failed(exc) from None
            self._bucket_ready = True

    async def close(self) -> None:
        await self.http.aclose()

    def _failed(self, exc: Exception) -> BridgeError:
        suppressed = TROUBLE.should_log("storage")
        if suppressed is not None:
            log.warning(
                "Supabase Storage failed: %s (%d more suppressed)",
                exc if isinstance(exc, StorageApiError) else type(exc).__name__,
                suppressed,
            )
        return unavailable()

    async def signed_upload(
        self, path: str, req: UploadRequest, user_id: str, base_url: str
    ) -> SignedUpload:
        await self._ensure_bucket()
        try:
            signed = await self.bucket.create_signed_upload_url(path)
        except (StorageException, httpx.HTTPError) as exc:
            raise self._failed(exc) from None
        return SignedUpload(signed["signedUrl"], signed["token"], time.time() + UPLOAD_URL_SECONDS)

    async def stat(self, path: str) -> StoredObject | None:
        try:
            info = await self.bucket.info(path)
        except StorageApiError as exc:
            if _status(exc) in (400, 404):  # not_found; a malformed key
                return None
            raise self._failed(exc) from None
        except (StorageException, httpx.HTTPError) as exc:
            raise self._failed(exc) from None
        metadata = info.get("metadata") or {}
        size = info.get("size", metadata.get("size"))
        content_type = info.get("content_type") or metadata.get("mimetype")
        if not isinstance(size, int) or not isinstance(content_type, str):
            raise AttachmentError("not_uploaded", "the upload has not finished", 409, "mediaUrl")
        return StoredObject(path, size, content_type.split(";", 1)[0].strip().lower())

    async def signed_read(self, path: str, ttl: int, base_url: str) -> str:
        try:
            signed = await self.bucket.create_signed_url(path, ttl)
        except StorageApiError as exc:
            if _status(exc) == 404:
                raise AttachmentError("not_found", "the attachment is gone", 404) from None
            raise self._failed(exc) from None
        except (StorageException, httpx.HTTPError) as exc:
            raise self._failed(exc) from None
        url = signed["signedURL"]
        if url is None:
            raise AttachmentError("not_found", "the attachment is gone", 404)
        return url

    async def remove(self, path: str) -> None:
        """`DELETE /object/<bucket>` `{ prefixes: [path] }` (storage3's
        remove); a missing object is no error (Storage answers `[]`).
        Failures are raised as they are: the sweeper logs and retries."""
        await self.bucket.remove([path])

    def routes(self) -> list[web.RouteDef]:
        return []  # clients talk to Storage itself
