"""What an attachment may be, pure: the upload request a client sends
(`{ filename, contentType, size }`), the object path it gets (scoped by
conversation: `<conversation id>/<random uuid>/<file name>`), and the checks
a stored object must pass before a message may carry it. No I/O: the
backends (bridge/attachments/local.py, storage.py) say what is stored, these
functions say whether that is acceptable, with an AttachmentError naming
the reason."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from bridge.errors import BridgeError, PayloadError
from bridge.payloads import as_uuid

MAX_FILENAME_CHARS = 120
MAX_PATH_CHARS = 2048
# Characters kept in a stored file name; anything else becomes "_" (the name
# is part of a URL and of a Storage key, which allows a narrow set).
_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()+-]")
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")


class AttachmentError(BridgeError):
    """An attachment refused: a wrong type, too large, a path outside the
    conversation, an object that was never uploaded, a bad or expired
    signed-URL token. Nothing was stored."""

    status = 400

    def __init__(self, code: str, message: str, status: int, field: str | None = None) -> None:
        super().__init__(message, code=code, status=status, field=field)


@dataclass(frozen=True)
class Rules:
    max_bytes: int
    allowed_types: tuple[str, ...]

    def allows(self, content_type: str) -> bool:
        return content_type in self.allowed_types


@dataclass(frozen=True)
class UploadRequest:
    conversation_id: str
    filename: str  # as stored: cleaned
    content_type: str
    size: int


@dataclass(frozen=True)
class StoredObject:
    """What a backend knows of an uploaded object."""

    path: str
    size: int
    content_type: str


def _get(body: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in body and body[name] not in (None, ""):
            return body[name]
    return None


def content_type_of(value: Any, rules: Rules, field: str = "contentType") -> str:
    """A MIME type the settings allow (parameters such as `; charset=` dropped)."""
    if not isinstance(value, str) or not value.strip():
        raise PayloadError("missing_field", f"{field} is required", field)
    mime = value.split(";", 1)[0].strip().lower()
    if not _MIME.fullmatch(mime):
        raise PayloadError("invalid_field", f"{field} is not a MIME type", field)
    if not rules.allows(mime):
        raise AttachmentError(
            "unsupported_type", f"files of type {mime} cannot be attached", 415, field
        )
    return mime


def clean_filename(value: Any) -> str:
    """The file name as stored: its last path segment, NFC, unsafe
    characters replaced, at most MAX_FILENAME_CHARS (keeping the extension)."""
    if not isinstance(value, str) or not value.strip():
        raise PayloadError("missing_field", "filename is required", "filename")
    if "\x00" in value:
        raise PayloadError("invalid_field", "filename must not contain NUL characters", "filename")
    name = unicodedata.normalize("NFC", value).replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = _UNSAFE.sub("_", name).strip(". ")
    if not name or set(name) <= {"_"}:
        raise PayloadError("invalid_field", "filename has no usable characters", "filename")
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot else ""
        keep = MAX_FILENAME_CHARS - len(ext) - (1 if ext else 0)
        name = (stem if dot else name)[:keep] + (f".{ext}" if ext else "")
    return name


def declared_size(value: Any, rules: Rules) -> int:
    if value is None:
        raise PayloadError("missing_field", "size is required (in bytes)", "size")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PayloadError(
            "invalid_field", "size must be a whole number of bytes, at least 1", "size"
        )
    if value > rules.max_bytes:
        raise too_large(rules, "size")
    return value


def too_large(rules: Rules, field: str | None = None) -> AttachmentError:
    return AttachmentError(
        "too_large", f"attachments may be at most {rules.max_bytes} bytes", 413, field
    )


def upload_request(payload: Any, rules: Rules, conversation_id: str | None = None) -> UploadRequest:
    """`{ conversationId, filename, contentType, size }` (REST passes the
    conversation from its path; snake_case keys work too)."""
    if not isinstance(payload, dict):
        raise PayloadError("invalid_payload", "expected a JSON object")
    if conversation_id is None:
        raw = _get(payload, "conversationId", "conversation_id")
        if raw is None:
            raise PayloadError("missing_field", "conversationId is required", "conversationId")
        conversation_id = as_uuid(raw, "conversationId")
    filename = clean_filename(_get(payload, "filename", "fileName", "name"))
    content_type = content_type_of(
        _get(payload, "contentType", "content_type", "mimeType", "type"), rules
    )
    size = declared_size(_get(payload, "size"), rules)
    return UploadRequest(conversation_id, filename, content_type, size)


def object_path(req: UploadRequest, object_id: uuid.UUID | None = None) -> str:
    """`<conversation id>/<random uuid>/<file name>`: the first folder is
    what storage RLS and the bridge check; the uuid keeps names apart."""
    return f"{req.conversation_id}/{object_id or uuid.uuid4()}/{req.filename}"


def is_external_url(media_url: str) -> bool:
    """The seed's clients may still send a full URL (hosted elsewhere); only
    storage paths are attachments."""
    return media_url.startswith(("https://", "http://"))


def path_in_conversation(path: Any, conversation_id: str, field: str = "mediaUrl") -> str:
    """An attachment path of this conversation, in the shape object_path
    makes; anything else (another conversation's, a made-up folder, dot
    segments) is `outside_conversation`."""
    if not isinstance(path, str) or not path:
        raise PayloadError("missing_field", f"{field} is required", field)
    parts = path.split("/")
    if (
        len(path) > MAX_PATH_CHARS
        or len(parts) != 3
        or parts[0] != conversation_id
        or not _is_uuid(parts[1])
        or not _clean(parts[2])
    ):
        raise AttachmentError(
            "outside_conversation",
            f"{field} is not an attachment of this conversation",
            403,
            field,
        )
    return path


def _clean(name: str) -> bool:
    """A file name as clean_filename stores it."""
    try:
        return clean_filename(name) == name
    except PayloadError:
        return False


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def check_stored(
    found: StoredObject | None, rules: Rules, message_type: str, field: str = "mediaUrl"
) -> StoredObject:
    """A stored object a message may carry: uploaded, within the size
    limit, of an allowed type, an image for an image message."""
    if found is None:
        raise AttachmentError(
            "not_uploaded", "nothing was uploaded at this path (upload it first)", 409, field
        )
    if found.size > rules.max_bytes:
        raise too_large(rules, field)
    if not rules.allows(found.content_type):
        raise AttachmentError(
            "unsupported_type", f"files of type {found.content_type} cannot be attached", 415, field
        )
    if message_type == "image" and not found.content_type.startswith("image/"):
        raise AttachmentError(
            "not_an_image",
            f"an image message needs an image, this is {found.content_type}",
            400,
            "messageType",
        )
    return found
