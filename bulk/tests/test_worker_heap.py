"""A bulk pool process freezes its heap once, after its first chunk (gc.freeze: fewer objects scanned)."""

from __future__ import annotations

import gc

from bulk import worker


def test_the_heap_is_frozen_once_per_process(monkeypatch):
    # given: a process that has not frozen its heap yet
    monkeypatch.setattr(worker, "_frozen_in_pid", 0)
    gc.unfreeze()
    try:
        # when: two chunks are done
        worker.heap_freeze_once()
        frozen = gc.get_freeze_count()
        kept = [[] for _ in range(10)]  # noqa: F841 - new tracked objects: a second freeze would take them too
        worker.heap_freeze_once()

        # then: frozen after the first, not again after the second
        assert frozen > 0
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
