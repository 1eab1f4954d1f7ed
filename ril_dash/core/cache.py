"""A thread-safe LRU cache bounded by bytes, that loads each key once.

Heavy objects (decoded volumes, thumbnail stacks) are shared by every request of a server
process. Concurrent requests for the same missing key wait for one loader instead of decoding
the same 150 MB file twice; failures are cached too, so a corrupt file is not re-read on every
request (its key changes when the file changes).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ByteBudgetLRU:
    """LRU mapping whose values report their size; evicts least recently used over budget.

    Parameters
    ----------
    max_bytes : int
        Total size budget. One value larger than the budget is still kept (alone).
    sizeof : callable
        Returns the size in bytes of a value.

    Examples
    --------
    >>> cache = ByteBudgetLRU(10, sizeof=len)
    >>> cache.get_or_load("a", lambda: "x" * 6)
    'xxxxxx'
    >>> cache.get_or_load("b", lambda: "y" * 6)  # evicts "a"
    'yyyyyy'
    >>> "a" in cache, "b" in cache
    (False, True)
    """

    def __init__(self, max_bytes: int, sizeof: Callable[[Any], int]) -> None:
        self.max_bytes = max_bytes
        self._sizeof = sizeof
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    @property
    def total_bytes(self) -> int:
        return self._total

    def _lookup(self, key: Hashable) -> tuple[bool, Any]:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return True, self._items[key][0]
        return False, None

    def get_or_load(self, key: Hashable, loader: Callable[[], Any]) -> Any:
        """Return the cached value for ``key``, calling ``loader`` once if it is missing.

        An exception raised by ``loader`` is cached and re-raised for later calls.
        """
        found, value = self._lookup(key)
        if not found:
            with self._lock:
                key_lock = self._loading.setdefault(key, threading.Lock())
            with key_lock:
                found, value = self._lookup(key)
                if not found:
                    try:
                        value = loader()
                    except Exception as exc:  # cached so a bad file is not re-read
                        value = _Failure(exc)
                    self._store(key, value)
            with self._lock:
                self._loading.pop(key, None)
        if isinstance(value, _Failure):
            raise value.error
        return value

    def _store(self, key: Hashable, value: Any) -> None:
        size = 0 if isinstance(value, _Failure) else int(self._sizeof(value))
        with self._lock:
            self._items[key] = (value, size)
            self._total += size
            while self._total > self.max_bytes and len(self._items) > 1:
                _, (_, old_size) = self._items.popitem(last=False)
                self._total -= old_size

    def discard(self, predicate: Callable[[Hashable], bool]) -> None:
        """Remove every entry whose key matches ``predicate``."""
        with self._lock:
            for key in [k for k in self._items if predicate(k)]:
                self._total -= self._items.pop(key)[1]
