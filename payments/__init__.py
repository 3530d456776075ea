"""payments: payments, transactions, gateway adapters. Knows nothing of orders. Public: services, events."""
