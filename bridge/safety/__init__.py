"""Trust and quiet (issue 14 items 2 and 3): blocks, reports, muted
conversations and quiet hours: payloads (pure), their SQL, socket events
and REST routes."""
