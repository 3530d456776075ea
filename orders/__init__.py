"""orders: orders, line snapshots, status history, fulfilment, shipments, returns. Public: services, events."""
