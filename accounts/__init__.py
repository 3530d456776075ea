"""accounts: users (email as login), profiles, addresses, staff roles, API keys. Public: services, events."""
