"""Account-wide limits of the Luma engine, shared by every render of this process.

* :class:`JobSlots`: a limit on jobs in flight for one key at one endpoint, learned from Luma's
  concurrency 429s (or capped by the engine's setting), shared by threads and event loops.
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
    """A counting limit on jobs in flight for one key, shared by threads and event loops (ComfyUI
    runs each prompt in its own loop). Waiters are served first come, first served.

    The limit is learned: with no ``ceiling`` (the engine's setting) jobs go out together; when
    Luma refuses one with a concurrency 429 (no job created), the limit becomes the number of this
    process's jobs then running at Luma for the key, and rises again whenever Luma accepts more
    jobs at once than that. A ``ceiling``, when given, is never passed.
    """

    @dataclass(eq=False)
    class _Waiter:
        loop: asyncio.AbstractEventLoop
        future: asyncio.Future
        granted: bool = False

    def __init__(self, ceiling: int | None = None):
        self._lock = threading.Lock()
        self._ceiling = _ceiling(ceiling)
        self._learned: int | None = None
        self._used = 0  # slots taken: jobs being sent plus jobs running at Luma
        self._running = 0  # of those, jobs Luma created
        self._waiters: deque[JobSlots._Waiter] = deque()
        self.peak = 0

    @property
    def in_use(self) -> int:
        return self._used

    @property
    def running(self) -> int:
        return self._running

    @property
    def limit(self) -> int | None:
        """Jobs allowed in flight now (None: no limit known)."""
        limits = [x for x in (self._ceiling, self._learned) if x is not None]
        return min(limits) if limits else None

    @property
    def learned(self) -> int | None:
        return self._learned

    def set_ceiling(self, ceiling: int | None) -> None:
        with self._lock:
            self._ceiling = _ceiling(ceiling)
            self._grant_locked()

    def _free_locked(self) -> bool:
        limit = self.limit
        return limit is None or self._used < limit

    def _take_locked(self) -> None:
        self._used += 1
        self.peak = max(self.peak, self._used)

    def _grant_locked(self) -> None:
        while self._waiters and self._free_locked():
            w = self._waiters.popleft()
            try:
                w.loop.call_soon_threadsafe(_wake, w.future)
            except RuntimeError:  # that waiter's loop is gone; serve the next one
                continue
            w.granted = True
            self._take_locked()

    async def acquire(self, cancelled: CancelFn, status: Callable[[str], None] = lambda t: None,
                      *, force: bool = False, running: bool = False) -> "Slot":
        """Take a slot, waiting (interruptibly) while all are in use. ``force`` takes one at once, for a
        job that already runs at Luma (``running``: counted as one)."""
        slot = Slot(self)
        if force:
            with self._lock:
                self._take_locked()
                slot._held = True
                if running:
                    self._running += 1
                    slot._created = True
            return slot
        await self._wait(slot, cancelled, status)
        return slot

    async def _wait(self, slot: "Slot", cancelled: CancelFn, status: Callable[[str], None]) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free_locked() and not self._waiters:
                self._take_locked()
                slot._held = True
                return
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
                    status(f"waiting for a free Luma job slot ({self._used} of {self.limit} in use), {waited} s")
                    shown = waited
                await asyncio.wait({w.future}, timeout=0.1)
            slot._held = True
        except BaseException:
            with self._lock:
                if not w.granted:
                    self._waiters.remove(w)
                    raise
            slot._held = True
            slot.release()
            raise

    def _created(self, slot: "Slot") -> None:
        with self._lock:
            if slot._held and not slot._created:
                slot._created = True
                self._running += 1
                if self._learned is not None and self._running > self._learned:
                    self._learned = self._running  # Luma took more at once than we had learned
                    self._grant_locked()

    def _refused(self, slot: "Slot") -> int | None | bool:
        """A concurrency 429 for ``slot``'s job: learn the limit from this process's running jobs and
        give the slot back. None (slot kept) when nothing else of ours is in flight: then the limit
        is not ours to learn (another client of the key, or the requests-per-minute limit). False
        while other jobs of ours are still being sent (ask again when their answers are in)."""
        with self._lock:
            if not slot._held:
                return None
            if self._running < 1:
                return False if self._used > 1 else None
            self._learned = self._running if self._learned is None else min(self._learned, self._running)
            slot._held = False
            self._used = max(0, self._used - 1)
            self._grant_locked()
            return self._learned

    def _release(self, slot: "Slot") -> None:
        with self._lock:
            if not slot._held:
                return
            slot._held = False
            self._used = max(0, self._used - 1)
            if slot._created:
                slot._created = False
                self._running = max(0, self._running - 1)
            self._grant_locked()


def _ceiling(value: int | None) -> int | None:
    return None if value is None or int(value) <= 0 else int(value)


def _wake(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(True)


class Slot:
    """One job's place in its key's :class:`JobSlots`; ``release`` is idempotent."""

    def __init__(self, slots: JobSlots):
        self._slots = slots
        self._held = False
        self._created = False

    @property
    def held(self) -> bool:
        return self._held

    def job_created(self) -> None:
        """Luma created this slot's job: it counts as running until released."""
        self._slots._created(self)

    async def refused(self, cancelled: CancelFn) -> int | None:
        """Luma refused the job at its concurrent-job limit (no job created): the limit learned, with
        the slot given back; None when nothing can be learned (the slot is kept). Waits while other
        jobs of this key are being sent, to count the ones Luma took."""
        while True:
            learned = self._slots._refused(self)
            if learned is not False:
                return learned
            if cancelled():
                raise Cancelled("Interrupted by the user.")
            await asyncio.sleep(0.02)

    async def wait_again(self, cancelled: CancelFn, status: Callable[[str], None] = lambda t: None) -> None:
        """After :meth:`refused`: wait in line for a free slot again."""
        await self._slots._wait(self, cancelled, status)

    def release(self) -> None:
        self._slots._release(self)


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


def slots_for(account: str, base_url: str, ceiling: int | None = None) -> JobSlots:
    """The process-wide job limiter of one key at one endpoint. ``ceiling`` (None or 0: none, learn
    the limit from Luma) follows the latest engine; what was learned stays for the process."""
    k = f"{account}@{base_url}"
    with _REGISTRY_LOCK:
        s = _SLOTS.get(k)
        if s is None:
            s = _SLOTS[k] = JobSlots(ceiling)
    s.set_ceiling(ceiling)
    return s


def session_spend(account: str) -> SessionSpend:
    with _REGISTRY_LOCK:
        return _SPEND.setdefault(account, SessionSpend())

