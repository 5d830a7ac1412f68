"""`bridge health`, the container's health check, asks the daemon on the
port the settings name, whichever it is."""

from __future__ import annotations

import json

from bridge.embedded import free_port
from tests.support.harness import Harness, run_cli


async def test_health_follows_the_configured_port(bridge: Harness) -> None:
    """With SOCKET_PORT set to where the daemon listens, exit 0 and the
    /healthz body; the same with BRIDGE_SERVER_PORT."""
    port = str(bridge.app.port)
    for env in ({"SOCKET_PORT": port}, {"BRIDGE_SERVER_PORT": port}):
        code, out, err = await run_cli("health", env={**env, "BRIDGE_SERVER_HOST": "0.0.0.0"})
        assert code == 0, err
        assert json.loads(out)["database"] == "ok"


async def test_health_fails_clearly_when_nothing_listens() -> None:
    """A port nobody serves: exit 1, one line naming the URL, no traceback."""
    port = str(free_port())
    code, _, err = await run_cli("health", env={"SOCKET_PORT": port})
    assert code == 1
    assert f":{port}/healthz unreachable" in err and "Traceback" not in err
