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
# Per-path transaction locks on attachments, keyed by
# hashtextextended(ATTACHMENT_PATH || path, 0): inserts naming a path take it
# shared (public.refuse_removed_attachment(),
# supabase/migrations/20261125026000_attachment_removals.sql), the sweeper
# exclusively while it checks and removes (bridge/attachments/removals.py).
ATTACHMENT_PATH = "attachment:"
