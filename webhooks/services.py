"""Public face of webhooks: outgoing webhooks to integrators' endpoints (Standard Webhooks)."""
