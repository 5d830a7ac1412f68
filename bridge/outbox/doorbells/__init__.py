"""Doorbells: things that tell the relay the outbox has rows. They never
carry the changes themselves; the outbox does."""
