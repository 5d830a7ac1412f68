"""The advisory lock registry: no two features share a key, and the keys
the SQL takes are the ones the registry says."""

from __future__ import annotations

import re
from pathlib import Path

from bridge import locks

MIGRATIONS = Path(__file__).resolve().parents[2] / "supabase" / "migrations"


def registry() -> dict[str, int]:
    return {k: v for k, v in vars(locks).items() if k.isupper() and isinstance(v, int)}


def test_every_lock_has_its_own_key() -> None:
    """Two features taking the same advisory lock would block each other."""
    keys = registry()
    assert len(set(keys.values())) == len(keys)


def test_sql_takes_only_registered_keys() -> None:
    """Every advisory lock key written in a migration is in the registry."""
    registered = set(registry().values())
    for path in MIGRATIONS.glob("*.sql"):
        for key in re.findall(r"pg_(?:try_)?advisory_\w*lock\w*\((\d+)\)", path.read_text()):
            assert int(key) in registered, f"{path.name} takes unregistered lock {key}"


def test_sql_and_sweeper_lock_attachment_paths_alike() -> None:
    """The insert trigger and the sweeper take the same per-path key, or a
    message could name a file the sweeper is removing."""
    sql = (MIGRATIONS / "20261125026000_attachment_removals.sql").read_text()
    assert f"hashtextextended('{locks.ATTACHMENT_PATH}' || new.media_url, 0)" in sql
