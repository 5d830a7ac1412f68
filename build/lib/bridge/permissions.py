"""Permission errors the bridge's own requests should never meet.

Every client request runs as `authenticated` on SQL the bridge wrote, for
paths RLS allows. A 42501 from RLS (a `with check` refusal, a trigger's own
"not a participant") is the client's fault. "permission denied for table /
function / schema ..." is not: a grant is missing, usually because the
project has "default privileges for new entities" off and a migration
relies on them. The operator must hear of it; the client must not get the
database's words for it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from bridge.metrics import Metrics

log = logging.getLogger(__name__)

# Postgres' aclcheck_error wording: "permission denied for <object kind> <name>".
_GRANT_DENIED = re.compile(
    r"^permission denied for (?P<kind>table|view|materialized view|sequence|function|procedure"
    r"|routine|schema|type|column|database|foreign table|large object) (?P<object>.+)$"
)


@dataclass(frozen=True)
class GrantProblem:
    sqlstate: str
    kind: str
    object: str

    def describe(self) -> str:
        return (
            f"permission denied for {self.kind} {self.object} (SQLSTATE {self.sqlstate}):"
            f" a grant to authenticated is missing; apply the migrations' grants"
        )


def grant_problem(sqlstate: str, message: str) -> GrantProblem | None:
    """The missing grant a 42501 stands for; None for RLS and our own refusals."""
    if sqlstate != "42501":
        return None
    match = _GRANT_DENIED.match(message.strip())
    if match is None:
        return None
    return GrantProblem(sqlstate, match["kind"], match["object"])


class PermissionWatch:
    """Logs each kind of missing grant once, counts every occurrence, and
    tells /healthz what is wrong."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._seen: dict[GrantProblem, int] = {}

    def report(self, problem: GrantProblem) -> None:
        self.metrics.inc("permission_errors")
        count = self._seen.get(problem, 0)
        self._seen[problem] = count + 1
        if count == 0:
            log.error(
                "database refused a request RLS allows: a grant is missing",
                extra={
                    "sqlstate": problem.sqlstate,
                    "kind": problem.kind,
                    "db_object": problem.object,
                },
            )

    def problems(self) -> list[str]:
        return [p.describe() for p in self._seen]
