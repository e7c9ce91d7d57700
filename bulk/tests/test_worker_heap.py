"""A bulk pool process freezes its heap once, after its first chunk (gc.freeze: fewer objects scanned)."""

from __future__ import annotations

import gc

from bulk import worker


def test_the_heap_is_frozen_once_per_process(monkeypatch):
    # given: a process that has not frozen its heap yet, its gc.freeze calls counted
    monkeypatch.setattr(worker, "_frozen_in_pid", 0)
    calls, real_freeze = [], gc.freeze

    def counted_freeze():
        calls.append(1)
        real_freeze()

    monkeypatch.setattr(gc, "freeze", counted_freeze)
    gc.unfreeze()
    try:
        # when: two chunks are done
        worker.heap_freeze_once()
        frozen = gc.get_freeze_count()
        worker.heap_freeze_once()

        # then: the heap was frozen after the first, and not again after the second (the count is not
        # compared: a frozen object may be freed meanwhile by another thread of the test process)
        assert frozen > 0
        assert len(calls) == 1
    finally:
        gc.unfreeze()
