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


class CollectionGate:
    """Writers of a collection (ingest, delete: shared) against a re-index's final catch-up
    and switch (exclusive), in this process. A waiting exclusive holder keeps new shared ones
    out, so a switch is never starved by a stream of writes."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared: dict[str, int] = {}
        self._exclusive: set[str] = set()

    @contextmanager
    def shared(self, key: str) -> Iterator[None]:
        with self._cond:
            while key in self._exclusive:
                self._cond.wait()
            self._shared[key] = self._shared.get(key, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                self._shared[key] -= 1
                if not self._shared[key]:
                    del self._shared[key]
                self._cond.notify_all()

    @contextmanager
    def exclusive(self, key: str) -> Iterator[None]:
        with self._cond:
            while key in self._exclusive:
                self._cond.wait()
            self._exclusive.add(key)
            while self._shared.get(key):
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._exclusive.discard(key)
                self._cond.notify_all()


# Shared by every Pipeline of the process, like document_locks.
collection_gate = CollectionGate()
