"""Per-key locks: one writer at a time per (collection, document_id) in this process."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Iterator
from contextlib import ExitStack, contextmanager


class KeyedLock:
    """A lock per key, made on first use and dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locks: dict[Hashable, tuple[threading.Lock, int]] = {}

    def _acquire(self, key: Hashable) -> threading.Lock:
        with self._mutex:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        lock.acquire()
        return lock

    def _release(self, key: Hashable) -> None:
        with self._mutex:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
        lock.release()

    @contextmanager
    def hold(self, keys: Iterable[tuple[str, str]]) -> Iterator[None]:
        """Hold every key's lock; taken in sorted order, so two holders of overlapping key
        sets never wait for each other in a cycle."""
        with ExitStack() as stack:
            for key in sorted(set(keys)):
                self._acquire(key)
                stack.callback(self._release, key)
            yield

    def __len__(self) -> int:
        with self._mutex:
            return len(self._locks)


# Shared by every Pipeline of the process: two pipelines over one store serialise too.
document_locks = KeyedLock()
