"""The API documents as tests read them: bridge/openapi.json (OpenAPI 3.1,
JSON Schema 2020-12) and docs/asyncapi.yaml (AsyncAPI 3, schemas of the
JSON Schema draft 7 family), with validators for payloads against them and
what the code says it handles and emits."""

from __future__ import annotations

import ast
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT7, DRAFT202012

REPO = Path(__file__).resolve().parents[2]
OPENAPI = REPO / "bridge" / "openapi.json"
ASYNCAPI = REPO / "docs" / "asyncapi.yaml"
ASYNCAPI_SPEC = REPO / "tests/js/node_modules/@asyncapi/specs/schemas/3.0.0-without-$id.json"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


@cache
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI.read_text())
    return document


@cache
def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(ASYNCAPI.read_text())
    return document


def pointer(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def deref(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and set(node) == {"$ref"}:
        node = pointer(document, node["$ref"])
    return node


# -- REST ---------------------------------------------------------------------


def openapi_operations(*, demo: bool = True) -> set[tuple[str, str]]:
    """(METHOD, path) of every documented operation; `demo=False` leaves out
    the demo page's (`x-demo-only`: only on the embedded default or with
    `server.dev`)."""
    return {
        (method.upper(), path)
        for path, item in openapi()["paths"].items()
        for method, operation in item.items()
        if method in METHODS and (demo or not operation.get("x-demo-only"))
    }


def openapi_validator(method: str, path: str, status: int, media: str) -> Any:
    """A validator of the documented response body (None: no schema)."""
    responses = openapi()["paths"][path][method.lower()]["responses"]
    response = deref(openapi(), responses.get(str(status)))
    assert response is not None, f"{method} {path}: status {status} is not documented"
    content = response.get("content", {})
    if media not in content and "*/*" in content:
        media = "*/*"
    assert media in content, f"{method} {path} {status}: {media} is not documented"
    # A response of components/responses (the 429 of every signed-in call)
    # is read where it is written.
    shared = responses[str(status)].get("$ref", "").removeprefix("#")
    at = shared or (
        "/paths/"
        + path.replace("~", "~0").replace("/", "~1")
        + f"/{method.lower()}/responses/{status}"
    )
    ref = {"$ref": f"urn:openapi#{at}/content/" + media.replace("/", "~1") + "/schema"}
    registry = Registry().with_resource("urn:openapi", DRAFT202012.create_resource(openapi()))
    return jsonschema.Draft202012Validator(ref, registry=registry)


# -- Socket.IO ------------------------------------------------------------------


def _message_of(operation: dict[str, Any]) -> dict[str, Any]:
    messages = operation["messages"]
    assert len(messages) == 1, operation
    message: dict[str, Any] = deref(asyncapi(), messages[0])
    return message


def client_events() -> dict[str, dict[str, Any]]:
    """Event name -> its `receive` operation."""
    ops = asyncapi()["operations"].values()
    return {_message_of(op)["name"]: op for op in ops if op["action"] == "receive"}


def server_events() -> dict[str, dict[str, Any]]:
    """Event name -> its `send` operation (Socket.IO packets that are no
    emit, such as CONNECT_ERROR, included)."""
    ops = asyncapi()["operations"].values()
    return {_message_of(op)["name"]: op for op in ops if op["action"] == "send"}


def _asyncapi_validator(ref: str) -> Any:
    registry = Registry().with_resource("urn:asyncapi", DRAFT7.create_resource(asyncapi()))
    return jsonschema.Draft7Validator({"$ref": "urn:asyncapi" + ref}, registry=registry)


def _payload_ref(message_ref: str) -> str:
    """The JSON pointer of a message's payload, through channel references."""
    node = pointer(asyncapi(), message_ref)
    while set(node) == {"$ref"}:
        message_ref = node["$ref"]
        node = pointer(asyncapi(), message_ref)
    return f"{message_ref}/payload"


def event_validator(event: str, *, client: bool = False) -> Any:
    """Validates the payload of a server event, or with `client` of a
    client event (`message_delivered` is both, with different payloads)."""
    op = client_events()[event] if client else server_events()[event]
    return _asyncapi_validator(_payload_ref(op["messages"][0]["$ref"]))


def ack_validator(event: str) -> Any:
    """Validates the ack of a client event."""
    reply = client_events()[event]["reply"]
    assert len(reply["messages"]) == 1
    return _asyncapi_validator(_payload_ref(reply["messages"][0]["$ref"]))


def problems(validator: Any, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:200]}"
        for e in validator.iter_errors(instance)
    ]


# -- what the code emits --------------------------------------------------------


def emitted_in_code() -> set[str]:
    """Event names the bridge's code emits: `Emit("name", ...)` (translate)
    and `<x>.emit("name" | NAME, ...)` with a literal, a module constant or
    a local name assigned string literals (`"a" if x else "b"`)."""
    events: set[str] = set()
    for path in (REPO / "bridge").rglob("*.py"):
        tree = ast.parse(path.read_text())
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        # `event = "a" if x else "b"` in a function, then `Emit(event, ...)`
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                local_names = _local_event_names(function)
                for node in ast.walk(function):
                    if isinstance(node, ast.Call) and node.args:
                        first = node.args[0]
                        if _is_emit(node) and isinstance(first, ast.Name):
                            events |= local_names.get(first.id, set())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            if not _is_emit(node):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                events.add(first.value)
            elif isinstance(first, ast.Name) and first.id in constants:
                events.add(constants[first.id])
    return events


def _is_emit(node: ast.Call) -> bool:
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "Emit") or (
        isinstance(func, ast.Attribute) and func.attr == "emit"
    )


def _local_event_names(function: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, set[str]]:
    """Names a function assigns a string literal, or a choice of two."""
    names: dict[str, set[str]] = {}
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        value = node.value
        options = [value.body, value.orelse] if isinstance(value, ast.IfExp) else [value]
        strings = {o.value for o in options if isinstance(o, ast.Constant)}
        if len(strings) != len(options) or not all(isinstance(s, str) for s in strings):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name):
                names.setdefault(target.id, set()).update(strings)
    return names


# -- keys a payload has that the document does not name ---------------------------


def undocumented_keys(ref: str, instance: Any) -> list[str]:
    """Paths of keys in `instance` that the schema at `ref` (a pointer into
    docs/asyncapi.yaml, `#/...`) does not name. The schemas allow extra keys,
    so validation alone misses a key a client reads that the document does
    not list (or a camelCase / snake_case twin of a documented one)."""
    found: list[str] = []
    _walk_keys(ref, instance, "", found)
    return found


def server_event_ref(event: str) -> str:
    return _payload_ref(server_events()[event]["messages"][0]["$ref"])


def ack_ref(event: str) -> str:
    reply = client_events()[event]["reply"]
    return _payload_ref(reply["messages"][0]["$ref"])


def _resolved(ref: str) -> tuple[str, Any]:
    node = pointer(asyncapi(), ref)
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        node = pointer(asyncapi(), ref)
    return ref, node


def _fits(ref: str, instance: Any) -> bool:
    return not problems(_asyncapi_validator(ref), instance)


def _properties(ref: str, instance: Any) -> dict[str, list[str]] | None:
    """Property name -> the pointers of its schemas at this level (through
    allOf and the matching oneOf / anyOf branch); None when the schema says
    nothing of keys or takes any (additionalProperties)."""
    ref, node = _resolved(ref)
    if not isinstance(node, dict) or "additionalProperties" in node:
        return None
    described = "properties" in node
    props: dict[str, list[str]] = {
        name: [f"{ref}/properties/{name}"] for name in node.get("properties", {})
    }
    branches = [f"{ref}/allOf/{i}" for i in range(len(node.get("allOf", [])))]
    for key in ("oneOf", "anyOf"):
        matching = [
            f"{ref}/{key}/{i}"
            for i in range(len(node.get(key, [])))
            if _fits(f"{ref}/{key}/{i}", instance)
        ]
        branches += matching[:1]
    for branch in branches:
        sub = _properties(branch, instance)
        if sub is not None:
            described = True
            for name, refs in sub.items():
                props.setdefault(name, []).extend(refs)
    return props if described else None


def _walk_keys(ref: str, instance: Any, path: str, found: list[str]) -> None:
    if isinstance(instance, list):
        ref, node = _resolved(ref)
        if isinstance(node, dict) and isinstance(node.get("items"), dict):
            for i, item in enumerate(instance):
                _walk_keys(f"{ref}/items", item, f"{path}{i}/", found)
        return
    if not isinstance(instance, dict):
        return
    props = _properties(ref, instance)
    if props is None:
        return
    for key, value in instance.items():
        if key not in props:
            found.append(f"{path}{key}")
            continue
        for sub in props[key]:
            _walk_keys(sub, value, f"{path}{key}/", found)
