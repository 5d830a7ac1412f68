"""The API documents against their specifications and against the code:
bridge/openapi.json is valid OpenAPI 3.1, docs/asyncapi.yaml valid AsyncAPI
3.0 (the official JSON Schema from @asyncapi/specs); every client event the
gateway registers and every event the code emits is documented, and nothing
else; the rooms translate() sends to are the documented ones; every error
code the socket handlers answer is in the documented list. (REST routes
against the OpenAPI paths, and live payloads against the schemas:
tests/integration/test_api_documents.py.)"""

from __future__ import annotations

import ast
import json

import jsonschema
from openapi_spec_validator import validate as validate_openapi

from bridge.server import CLIENT_EVENTS
from bridge.translate import translate
from tests.support.documents import (
    ASYNCAPI_SPEC,
    REPO,
    asyncapi,
    client_events,
    deref,
    emitted_in_code,
    openapi,
    server_events,
)
from tests.unit.test_translate import BASE, CASES


def test_openapi_document_is_valid_openapi_3_1() -> None:
    """The REST document passes the OpenAPI 3.1 validator (schemas as JSON
    Schema 2020-12), so generators and viewers can read it."""
    assert openapi()["openapi"].startswith("3.1")
    validate_openapi(openapi())


def test_asyncapi_document_is_valid_asyncapi_3() -> None:
    """The Socket.IO document passes AsyncAPI's own JSON Schema for 3.0."""
    assert ASYNCAPI_SPEC.is_file(), "run `npm install` in tests/js (make test does)"
    spec = json.loads(ASYNCAPI_SPEC.read_text())
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in jsonschema.Draft7Validator(spec).iter_errors(asyncapi())
    ]
    assert errors == []
    assert asyncapi()["asyncapi"].startswith("3.0")


def test_every_client_event_is_documented_and_nothing_else() -> None:
    """A handler added to the gateway without documenting it, or a
    documented event nobody handles, fails here."""
    assert set(client_events()) == set(CLIENT_EVENTS)
    for event, op in client_events().items():
        assert op["reply"]["messages"], f"{event}: no ack documented"
        assert op.get("x-error-codes"), f"{event}: no error codes documented"


def test_every_emitted_event_is_documented_and_nothing_else() -> None:
    """Each event name the code emits (translate's Emit, the gateway's and
    the guard's emits) is a documented server event, and each documented
    one is emitted somewhere (CONNECT_ERROR is a packet, not an emit)."""
    documented = {name for name, op in server_events().items() if "x-socketio-packet" not in op}
    assert emitted_in_code() == documented


def test_translated_events_go_to_documented_rooms() -> None:
    """Over translate()'s whole table of changes, every room an event goes
    to is one its operation lists in `x-rooms`."""
    channels = asyncapi()["channels"]
    for _name, change, _emits, _pushes in CASES:
        for emit in translate(change, BASE).emits:
            documented = set(server_events()[emit.event]["x-rooms"])
            assert documented <= {*channels, "socket"}, emit.event
            for room in emit.rooms:
                kind = room.split("_", 1)[0]
                assert kind in documented, f"{emit.event} to {kind} rooms is not documented"
                address = channels[kind]["address"]
                assert address.startswith(f"{kind}_{{")


def _codes_in_code() -> set[str]:
    """The first argument of every PayloadError / StoreError / AuthError /
    error_ack, the store's SQLSTATE and HINT mappings and the rate limit's
    code."""
    codes: set[str] = set()
    for path in (REPO / "bridge").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args:
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                first = node.args[0]
                if name in ("PayloadError", "StoreError", "AuthError", "error_ack") and (
                    isinstance(first, ast.Constant) and isinstance(first.value, str)
                ):
                    codes.add(first.value)
    from bridge.errors import RateLimited
    from bridge.store_errors import _CLIENT_ERRORS, _HINTED

    mapped = {code for code, _status in _CLIENT_ERRORS.values()}
    hinted = {refusal("").code for refusal in _HINTED.values()}
    return codes | mapped | hinted | {RateLimited.code}


def test_every_error_code_of_the_handlers_is_documented() -> None:
    """An error code the socket handlers can answer (payload checks, the
    store, token checks) that the document's ErrorCode list lacks fails
    here; so does a per-event code outside that list."""
    schema = deref(asyncapi(), asyncapi()["components"]["schemas"]["ErrorCode"])
    documented = set(schema["enum"])
    rest_only = {"invalid_json", "unknown_user"}  # a body, a profile: REST (openapi.json)
    assert _codes_in_code() - rest_only <= documented
    for event, op in client_events().items():
        assert set(op["x-error-codes"]) <= documented, event
