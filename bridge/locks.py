"""Every Postgres advisory lock the bridge takes, in one place, so two
features never pick the same key. Keys are in the 7406xxx range; a key
used in SQL too (a migration) says where."""

from __future__ import annotations

# Transaction lock held while migrations run, so two daemons starting with
# `database.migrate = true` apply them once (bridge/migrate.py).
MIGRATION = 7406000
# The doorbell's arming: writers take it shared in bridge.ring_doorbell()
# (supabase/migrations/20261124000800_outbox.sql), the relay tries it
# exclusively, never waiting, as it arms the bell (bridge.arm_doorbell(),
# supabase/migrations/20261125022000_doorbell_try_arm.sql).
DOORBELL = 7406001
# Session lock of the one instance that relays (bridge/outbox/lease.py).
RELAY_LEASE = 7406002
