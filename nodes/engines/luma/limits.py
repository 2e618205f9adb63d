"""Account-wide limits of the Luma engine, shared by every render of this process.

* :class:`JobSlots`: a counting limit on jobs in flight for one key at one endpoint, shared by
  threads and event loops (ComfyUI runs each prompt in its own loop).
* :class:`SessionSpend`: credits committed by this process with one key, against a session cap.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from ...common.errors import Cancelled, DirectorError
from ...common.progress import CancelFn


class JobSlots:
    """A counting limit on jobs in flight, shared by threads and event loops (ComfyUI runs each
    prompt in its own loop). Waiters are served first come, first served."""

    @dataclass(eq=False)
    class _Waiter:
        loop: asyncio.AbstractEventLoop
        future: asyncio.Future
        granted: bool = False

    def __init__(self, limit: int):
        self._lock = threading.Lock()
        self._limit = max(1, int(limit))
        self._used = 0
        self._waiters: deque[JobSlots._Waiter] = deque()
        self.peak = 0

    @property
    def in_use(self) -> int:
        return self._used

    def set_limit(self, limit: int) -> None:
        with self._lock:
            self._limit = max(1, int(limit))
            self._grant_locked()

    def _take_locked(self) -> None:
        self._used += 1
        self.peak = max(self.peak, self._used)

    def _grant_locked(self) -> None:
        while self._waiters and self._used < self._limit:
            w = self._waiters.popleft()
            try:
                w.loop.call_soon_threadsafe(_wake, w.future)
            except RuntimeError:  # that waiter's loop is gone; serve the next one
                continue
            w.granted = True
            self._take_locked()

    async def acquire(self, cancelled: CancelFn, status: Callable[[str], None] = lambda t: None,
                      *, force: bool = False, tick: Callable[[], None] = lambda: None) -> "Slot":
        """Take a slot, waiting (interruptibly) while all are in use; ``tick`` is called about once a
        second while waiting. ``force`` takes one at once, for a job that already runs at Luma."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if force or (self._used < self._limit and not self._waiters):
                self._take_locked()
                return Slot(self)
            w = JobSlots._Waiter(loop, loop.create_future())
            self._waiters.append(w)
        started = time.monotonic()
        shown = -1
        try:
            while not w.granted:
                if cancelled():
                    raise Cancelled("Interrupted by the user while waiting for a free Luma job slot; "
                                    "no job was sent.")
                waited = int(time.monotonic() - started)
                if waited != shown:
                    status(f"waiting for a free Luma job slot ({self._limit} in use), {waited} s")
                    tick()
                    shown = waited
                await asyncio.wait({w.future}, timeout=0.1)
            return Slot(self)
        except BaseException:
            with self._lock:
                if not w.granted:
                    self._waiters.remove(w)
                    raise
            self.release()
            raise

    def release(self) -> None:
        with self._lock:
            self._used = max(0, self._used - 1)
            self._grant_locked()


def _wake(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(True)



class Slot:
    """One taken job slot; ``release`` is idempotent."""

    def __init__(self, slots: JobSlots):
        self._slots: JobSlots | None = slots

    def release(self) -> None:
        if self._slots is not None:
            self._slots, s = None, self._slots
            s.release()


class SessionSpend:
    """Credits committed by this process with one key, checked against a session cap."""

    def __init__(self):
        self._lock = threading.Lock()
        self.committed = 0

    def reserve(self, credits: int, cap: int) -> int:
        """Count ``credits`` now, or raise when that would pass ``cap`` (0 = no cap)."""
        with self._lock:
            if cap and self.committed + credits > cap:
                left = max(0, cap - self.committed)
                raise DirectorError(
                    f"Luma engine: this shot costs {credits} credits but only {left} of the session budget of "
                    f"{cap} credits are left (max_credits_per_session); nothing was uploaded or sent.",
                    field="max_credits_per_session")
            self.committed += credits
            return credits

    def give_back(self, credits: int) -> None:
        with self._lock:
            self.committed = max(0, self.committed - credits)


_REGISTRY_LOCK = threading.Lock()
_SLOTS: dict[str, JobSlots] = {}
_SPEND: dict[str, SessionSpend] = {}


def slots_for(account: str, base_url: str, limit: int) -> JobSlots:
    """The process-wide job limiter of one key at one endpoint (its limit follows the latest engine)."""
    k = f"{account}@{base_url}"
    with _REGISTRY_LOCK:
        s = _SLOTS.get(k)
        if s is None:
            s = _SLOTS[k] = JobSlots(limit)
    s.set_limit(limit)
    return s


def session_spend(account: str) -> SessionSpend:
    with _REGISTRY_LOCK:
        return _SPEND.setdefault(account, SessionSpend())

