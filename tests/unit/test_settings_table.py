"""Defaults have one source, bridge/config.py: the README's settings table
is rendered from it and config.toml repeats its values, so neither can say
something the daemon does not do."""

from __future__ import annotations

import tomllib
from pathlib import Path

from bridge.settings_table import BEGIN, END, defaults, render, sections

REPO = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented() -> None:
    """A setting without a sentence would show an empty row to operators."""
    for name, fields in sections():
        for f in fields:
            assert f.metadata.get("doc"), f"{name}.{f.name} has no doc"


def test_readme_table_is_the_rendered_one() -> None:
    """The README shows exactly what `bridge settings` prints (run it and
    paste its output after changing a setting)."""
    readme = (REPO / "README.md").read_text()
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    assert readme[start:end] == render()


def test_config_toml_repeats_the_defaults() -> None:
    """Every value in the shipped config.toml is the default it stands for,
    so running with or without the file is the same daemon."""
    shipped = tomllib.loads((REPO / "config.toml").read_text())
    known = defaults()
    for section, table in shipped.items():
        for key, value in table.items():
            expected = known[section][key]
            if isinstance(expected, tuple):
                value = tuple(value)
            assert value == expected, f"config.toml {section}.{key} = {value!r}"
