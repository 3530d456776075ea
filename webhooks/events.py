"""Domain events of webhooks (none yet)."""
