"""The settings table of the README, rendered from the settings themselves
(bridge/settings.py), so the defaults and their documentation have one source.
`bridge settings` prints it; a unit test keeps the README's copy and
config.toml in step with it."""

from __future__ import annotations

import dataclasses
from typing import Any

from bridge.config import ENV_ALIASES, ENV_PREFIX
from bridge.settings import Settings

BEGIN = "<!-- settings table: rendered by `bridge settings`; edit bridge/settings.py -->"
END = "<!-- end of settings table -->"


def sections() -> list[tuple[str, tuple[dataclasses.Field[Any], ...]]]:
    """Each settings section's name and fields, in the order of Settings."""
    whole = Settings()
    return [
        (section.name, dataclasses.fields(getattr(whole, section.name)))
        for section in dataclasses.fields(Settings)
    ]


def defaults() -> dict[str, dict[str, Any]]:
    """Every setting's default, by section and key."""
    return {name: {f.name: f.default for f in fields} for name, fields in sections()}


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, tuple):
        return "<br>".join(f"`{v}`" for v in value) or "(none)"
    if value == "":
        return "(empty)"
    return f"`{value}`"


def render() -> str:
    """The markdown table, between the README's markers."""
    aliases: dict[tuple[str, str], str] = {v: k for k, v in ENV_ALIASES.items()}
    lines = [
        BEGIN,
        "",
        "| setting | environment | default | |",
        "|---|---|---|---|",
    ]
    for name, fields in sections():
        for f in fields:
            env = f"`{ENV_PREFIX}{name.upper()}_{f.name.upper()}`"
            alias = aliases.get((name, f.name))
            if alias:
                env += f", `{alias}`"
            default = "(secret)" if f.metadata.get("secret") and f.default else _shown(f.default)
            doc = f.metadata.get("doc", "")
            lines.append(f"| `{name}.{f.name}` | {env} | {default} | {doc} |")
    lines += ["", END]
    return "\n".join(lines)
