"""Telling a missing grant from an RLS refusal by Postgres' own wording."""

from __future__ import annotations

import pytest

from bridge.permissions import GrantProblem, grant_problem


@pytest.mark.parametrize(
    ("message", "kind", "obj"),
    [
        ("permission denied for table messages", "table", "messages"),
        (
            "permission denied for function is_conversation_participant",
            "function",
            "is_conversation_participant",
        ),
        ("permission denied for schema bridge", "schema", "bridge"),
        ("permission denied for sequence outbox_id_seq", "sequence", "outbox_id_seq"),
    ],
)
def test_missing_grants_are_recognised(message: str, kind: str, obj: str) -> None:
    """Postgres' aclcheck wording names the kind and the object."""
    assert grant_problem("42501", message) == GrantProblem("42501", kind, obj)


@pytest.mark.parametrize(
    ("sqlstate", "message"),
    [
        ("42501", 'new row violates row-level security policy for table "messages"'),
        ("42501", "sender 1 is not a participant of conversation 2"),
        ("42501", 'action "cancel" is for the brand_owner; you are the influencer'),
        ("23514", "permission denied for table messages"),
    ],
)
def test_rls_and_the_schemas_own_refusals_are_not_grant_problems(
    sqlstate: str, message: str
) -> None:
    """RLS with-check failures and our triggers' refusals are the client's."""
    assert grant_problem(sqlstate, message) is None
