"""Django's Redis cache backend, minus a per-call cost.

Django's RedisCacheClient builds a new redis.Redis object for every cache call. Building one sets up its table of
response callbacks (a few hundred entries), which costs more CPU than the Redis round trip itself. A redis.Redis
object is thread-safe (each command borrows a connection from the pool), so one per connection pool is enough.

    CACHES = {"default": {"BACKEND": "kernel.cache.RedisCache", "LOCATION": "redis://..."}}
"""

from __future__ import annotations

import threading

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}
        self._lock = threading.Lock()

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            with self._lock:
                client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
