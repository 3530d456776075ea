"""The shared kernel: money, domain events, the event bus with its transactional outbox, task defaults.

Public parts other modules may import: kernel.money, kernel.events, kernel.bus, kernel.celery, kernel.db.
"""
