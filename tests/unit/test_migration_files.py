"""House rules for the SQL in supabase/migrations, checked on the files."""

from __future__ import annotations

import re

from bridge.migrate import discover
from tests.conftest import SUPABASE_DIR

MIGRATIONS = discover(SUPABASE_DIR / "migrations")


def test_every_create_table_is_followed_by_enabling_rls() -> None:
    """Each `create table` is immediately followed by `enable row level security`
    on that table, so no table is ever exposed without RLS, even mid-migration."""
    for migration in MIGRATIONS:
        sql = migration.sql
        for match in re.finditer(r"create table (?:if not exists )?([\w.]+) \(", sql):
            table = match.group(1)
            end = sql.index(");", match.end())
            following = sql[end + 2 :].lstrip()
            assert following.startswith(f"alter table {table} enable row level security;"), (
                f"{migration.path.name}: {table} is not followed by enabling RLS"
            )


def test_policies_are_named_as_sentences() -> None:
    """Policy names read as sentences: capitalised, several words, no underscores."""
    for migration in MIGRATIONS:
        for name in re.findall(r'create policy "([^"]+)"', migration.sql):
            assert name[0].isupper() and " " in name and "_" not in name, name


def test_migration_versions_are_ordered_timestamps() -> None:
    """The supabase CLI orders migrations by their 14-digit timestamp prefix."""
    versions = [m.version for m in MIGRATIONS]
    assert versions == sorted(versions)
    assert all(len(v) == 14 for v in versions)
