"""Results of the round's pure checks and clearing, remembered per process (docs/adr/0177).

Every node parses the same signed offers and clears the same round several times: the leading CCSP when the
offers arrive, when it clears and when it imports the settlement block; a MESP when it checks the upper result
and on import; every node twice for a bid forwarded by both of its MESPs. :class:`Memo` keeps the last results
of such a pure function keyed by everything it reads (the signed bytes' digest under the network id, the round,
the roster, the parameters), so a repeat is a lookup. Only successes are kept; a value kept must not be mutated
by its readers (the parsed records are frozen; :func:`~.clearing.clear` hands out copies).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Memo(Generic[V]):
    """A bounded, thread-safe map of the last ``bound`` results (least recently used dropped first)."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()  # the clearing runs in worker threads (RoleContext.compute)

    def get(self, key: Hashable) -> V | None:
        """The value kept for ``key``, or None."""
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        """Keep ``value`` for ``key``."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.bound:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (tests and benchmarks that want a cold process)."""
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0
