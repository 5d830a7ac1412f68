"""Attachments (images and files of messages), one seam with two backends:

- `storage.py`: Supabase Storage through its API (the `supabase` package's
  storage3 client, with the service role key): a private bucket, Storage's
  own signed upload and read URLs; Storage's RLS policies
  (supabase/migrations/20261125020000_attachments.sql) give supabase-js
  clients the same rule, participants only.
- `local.py`: no Storage service (the embedded default): the bytes live in
  files under `attachments.dir`, and the bridge serves the signed upload and
  read URLs itself, at the same paths as Storage, with tokens signed by the
  JWT secret.

`rules.py` holds the pure checks (types, sizes, paths), `service.py` what
both backends share (who may upload where, what a message may carry, read
URLs), `api.py` the REST routes and socket events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from bridge.attachments.rules import StoredObject, UploadRequest


@dataclass(frozen=True)
class SignedUpload:
    url: str  # absolute: PUT the bytes there (or POST multipart, as storage3 does)
    token: str  # the token in `url`, for supabase-js `uploadToSignedUrl(path, token, file)`
    expires_at: float  # unix seconds


class Backend(Protocol):
    """Where attachment bytes live. `base_url`: the bridge's own address as
    the client reached it (the local backend's URLs point there)."""

    kind: str

    async def close(self) -> None: ...

    async def signed_upload(
        self, path: str, req: UploadRequest, user_id: str, base_url: str
    ) -> SignedUpload: ...

    async def stat(self, path: str) -> StoredObject | None:
        """The uploaded object at `path`, or None if nothing is there."""
        ...

    async def signed_read(self, path: str, ttl: int, base_url: str) -> str: ...

    async def remove(self, path: str) -> None:
        """Deletes the object at `path`; nothing there is fine (idempotent).
        Raises on failure (the sweeper logs it and tries again later)."""
        ...

    def routes(self) -> list[web.RouteDef]:
        """HTTP routes the backend serves on the bridge (local: the signed URLs)."""
        ...
