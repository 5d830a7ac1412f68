"""The demo chat page served at / outside production (issue 13)."""
