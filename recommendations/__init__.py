"""recommendations: co-purchase statistics, similar items, recently viewed. Public: services, events."""
