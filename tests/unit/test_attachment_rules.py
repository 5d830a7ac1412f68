"""The pure attachment checks (bridge/attachments/rules.py), table-tested:
upload requests, file names, paths of a conversation, stored objects; and
which backend the settings choose."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from bridge.attachments.rules import (
    AttachmentError,
    Rules,
    StoredObject,
    check_stored,
    clean_filename,
    object_path,
    path_in_conversation,
    upload_request,
)
from bridge.config import ConfigError, load_settings
from bridge.errors import BridgeError

C = "c0000000-0000-4000-8000-000000000001"
OTHER = "c0000000-0000-4000-8000-000000000002"
U = "5f0c7c1e-8f8e-4a57-9a0c-0d9a3c1b2e4f"
RULES = Rules(1000, ("image/png", "image/jpeg", "application/pdf"))


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"conversationId": C, "filename": "a.png", "contentType": "image/png", "size": 10},
            (C, "a.png", "image/png", 10),
        ),
        (
            {
                "conversation_id": C,
                "name": "b.pdf",
                "content_type": "Application/PDF",
                "size": 1000,
            },
            (C, "b.pdf", "application/pdf", 1000),
        ),
        (
            {"conversationId": C, "fileName": "c.jpg", "mimeType": "image/jpeg; q=1", "size": 1},
            (C, "c.jpg", "image/jpeg", 1),
        ),
    ],
)
def test_upload_requests_accepted(payload: dict[str, Any], expected: tuple[Any, ...]) -> None:
    """Both key styles the seed's clients use; the type lower-cased without
    parameters; a size up to the limit."""
    req = upload_request(payload, RULES)
    assert (req.conversation_id, req.filename, req.content_type, req.size) == expected


GOOD = {"conversationId": C, "filename": "a.png", "contentType": "image/png", "size": 10}


@pytest.mark.parametrize(
    ("change", "code", "status", "field"),
    [
        ({"contentType": "text/html"}, "unsupported_type", 415, "contentType"),
        ({"contentType": "image/svg+xml"}, "unsupported_type", 415, "contentType"),
        ({"contentType": "not a type"}, "invalid_field", 400, "contentType"),
        ({"contentType": None}, "missing_field", 400, "contentType"),
        ({"size": 1001}, "too_large", 413, "size"),
        ({"size": 0}, "invalid_field", 400, "size"),
        ({"size": -5}, "invalid_field", 400, "size"),
        ({"size": 1.5}, "invalid_field", 400, "size"),
        ({"size": True}, "invalid_field", 400, "size"),
        ({"size": "10"}, "invalid_field", 400, "size"),
        ({"size": None}, "missing_field", 400, "size"),
        ({"filename": ""}, "missing_field", 400, "filename"),
        ({"filename": "..."}, "invalid_field", 400, "filename"),
        ({"filename": "a\x00.png"}, "invalid_field", 400, "filename"),
        ({"filename": 7}, "missing_field", 400, "filename"),
        ({"conversationId": "nope"}, "invalid_field", 400, "conversationId"),
        ({"conversationId": None}, "missing_field", 400, "conversationId"),
    ],
)
def test_upload_requests_refused(
    change: dict[str, Any], code: str, status: int, field: str
) -> None:
    """Each bad field named, with the status REST answers."""
    with pytest.raises(BridgeError) as refused:
        upload_request({**GOOD, **change}, RULES)
    assert (refused.value.code, refused.value.status, refused.value.field) == (code, status, field)


def test_a_non_object_upload_request_is_refused() -> None:
    """A bare string or a list is not an upload request."""
    for payload in ("a.png", ["a.png"], None):
        with pytest.raises(BridgeError, match="JSON object"):
            upload_request(payload, RULES)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("photo.png", "photo.png"),
        ("C:\\Users\\leo\\My Photo.png", "My Photo.png"),
        ("../../etc/passwd", "passwd"),
        ("naïve café.pdf", "na_ve caf_.pdf"),
        ("a/b/c.jpg", "c.jpg"),
        (".hidden.png", "hidden.png"),
        ("x" * 200 + ".pdf", "x" * 116 + ".pdf"),
        ("report<script>.pdf", "report_script_.pdf"),
    ],
)
def test_file_names_are_cleaned(given: str, stored: str) -> None:
    """Only the last segment, URL- and key-safe characters, at most 120
    characters with the extension kept."""
    assert clean_filename(given) == stored


def test_object_paths_are_scoped_by_conversation() -> None:
    """`<conversation>/<uuid>/<name>`, which path_in_conversation accepts for
    that conversation only."""
    req = upload_request(GOOD, RULES)
    path = object_path(req, uuid.UUID(U))
    assert path == f"{C}/{U}/a.png"
    assert path_in_conversation(path, C) == path
    with pytest.raises(AttachmentError) as refused:
        path_in_conversation(path, OTHER)
    assert (refused.value.code, refused.value.status) == ("outside_conversation", 403)


@pytest.mark.parametrize(
    "path",
    [
        f"{C}/a.png",
        f"{C}/{U}/a.png/b",
        f"{C}/not-a-uuid/a.png",
        f"{C}/{U}/",
        f"{C}/{U}/bad name<>.png",
        f"{C.upper()}/{U}/a.png",
        f"/{C}/{U}/a.png",
        f"{OTHER}/{U}/a.png",
        "avatars/leo.png",
    ],
)
def test_paths_outside_the_conversation_are_refused(path: str) -> None:
    """Anything but this conversation's own object paths."""
    with pytest.raises(AttachmentError, match="not an attachment of this conversation"):
        path_in_conversation(path, C)


@pytest.mark.parametrize(
    ("found", "message_type", "code"),
    [
        (None, "image", "not_uploaded"),
        (StoredObject("p", 1001, "image/png"), "image", "too_large"),
        (StoredObject("p", 10, "text/html"), "file", "unsupported_type"),
        (StoredObject("p", 10, "application/pdf"), "image", "not_an_image"),
    ],
)
def test_stored_objects_refused(found: StoredObject | None, message_type: str, code: str) -> None:
    """What a message may not carry: nothing, too much, a wrong type, a
    PDF as an image."""
    with pytest.raises(AttachmentError) as refused:
        check_stored(found, RULES, message_type)
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("found", "message_type"),
    [
        (StoredObject("p", 1000, "image/png"), "image"),
        (StoredObject("p", 10, "image/jpeg"), "file"),
        (StoredObject("p", 10, "application/pdf"), "file"),
    ],
)
def test_stored_objects_accepted(found: StoredObject, message_type: str) -> None:
    """Within the limit and the list; an image may go as a file."""
    assert check_stored(found, RULES, message_type) is found


BASE_ENV = {"DATABASE_URL": "postgresql://db/x", "SUPABASE_JWT_SECRET": "s" * 40}


@pytest.mark.parametrize(
    ("env", "backend"),
    [
        ({}, "local"),
        ({"SUPABASE_SERVICE_ROLE_KEY": "sb_secret_x"}, "storage"),
        (
            {"SUPABASE_SERVICE_ROLE_KEY": "sb_secret_x", "BRIDGE_ATTACHMENTS_BACKEND": "local"},
            "local",
        ),
    ],
)
def test_the_backend_follows_the_settings(env: dict[str, str], backend: str) -> None:
    """`auto`: Supabase Storage when a service role key is set, else local."""
    assert load_settings(None, {**BASE_ENV, **env}).attachments_backend == backend


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"BRIDGE_ATTACHMENTS_BACKEND": "storage"}, "service_role_key"),
        ({"BRIDGE_ATTACHMENTS_BACKEND": "s3"}, "attachments.backend"),
        ({"BRIDGE_ATTACHMENTS_MAX_BYTES": "0"}, "max_bytes"),
    ],
)
def test_attachment_settings_that_cannot_work_stop_start_up(env: dict[str, str], says: str) -> None:
    """Storage without a key, an unknown backend, a zero limit."""
    with pytest.raises(ConfigError, match=says):
        load_settings(None, {**BASE_ENV, **env})


def test_allowed_types_come_comma_separated_from_the_environment() -> None:
    """BRIDGE_ATTACHMENTS_ALLOWED_TYPES is a list, as CORS_ORIGIN."""
    settings = load_settings(
        None, {**BASE_ENV, "BRIDGE_ATTACHMENTS_ALLOWED_TYPES": "image/png, application/pdf"}
    )
    assert settings.attachments.allowed_types == ("image/png", "application/pdf")
