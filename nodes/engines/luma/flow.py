"""What the steps of one Luma render share: the render's state (_Run), the ledger keeper thread,
progress, and the messages that tell the user what happened to their money and what to do."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

from ...common.errors import Cancelled
from ...shot.engine import RenderHooks, RenderTarget
from ...shot.request import ShotRequest
from .ledger import Job, Ledger, LedgerError
from .limits import JobSlots
from .transport import LumaTransport

STEPS = 5  # progress: uploaded, sent, processing, completed, downloaded

FAILURES: dict[str, tuple[str, bool]] = {
    # failure_code: (what happened, whether Luma says retrying the same request helps)
    "content_moderated": ("Luma's moderation refused this shot (prompt or keyframe images); change them", False),
    "generation_failed": ("Luma could not generate this shot", True),
    "budget_exhausted": ("the Luma account ran out of credits during the job; add credits at "
                         "platform.lumalabs.ai", False),
    "output_not_found": ("Luma finished the job but lost its output", True),
    "image_too_large": ("a keyframe image is larger than Luma accepts; use a smaller image", False),
    "unsupported_format": ("Luma cannot read the format of an input image", False),
    "corrupt_input": ("Luma found an input image corrupt", False),
    "invalid_request": ("Luma found the request invalid", False),
    "rate_limited": ("Luma dropped the job at its rate limit; lower 'max concurrent jobs'", False),
}

RESOLVE_INPUT = "resolve_uncertain"  # the Luma Engine node's input (its last)


def failure_message(generation_id: str, code: str | None, reason: str | None) -> str:
    """A plain message for a failed job, naming Luma's failure code, with retry advice only where
    Luma says it helps."""
    what, retry = FAILURES.get(code or "", (f"Luma reported the job as failed ({code or 'no code'})", False))
    msg = f"Luma engine: job {generation_id} failed ({code or 'no code'}): {what}"
    if reason:
        msg += f" ({reason.strip().rstrip('.')})"
    msg += "."
    if retry:
        msg += " Retrying the same request may work: queue the graph again."
    return msg


def refused_message(job: Job) -> str:
    """Why a shot whose last job failed for a reason a retry cannot fix is not sent again."""
    what = FAILURES.get(job.failure_code or "", ("Luma reported the job as failed", False))[0]
    return (f"Luma engine: not sent again. This shot's last job {job.generation_id} failed with "
            f"{job.failure_code} ({what}), and sending the same request again cannot fix that. Change the request "
            f"(prompt, images or settings), or, to send it unchanged anyway (billed again), type '{job.id} resend' "
            f"in the Luma Engine node's '{RESOLVE_INPUT}' input, or run: director ledger resend {job.id}.")


def uncertain_message(job: Job) -> str:
    """Why the shot stopped, and the one step that resolves it (from the UI or the command line)."""
    what = (job.message or "the job request may have reached Luma").strip().rstrip(".")
    if not what.startswith("Luma engine:"):
        what = f"Luma engine: {what}"
    return (f"{what}. Director stops this shot (ledger row {job.id}) until you decide; nothing is sent again. "
            f"Look in Luma's app for a job of this shot, then either give its id - type '{job.id} JOB_ID' in the "
            f"Luma Engine node's '{RESOLVE_INPUT}' input, or run: director ledger resolve {job.id} JOB_ID - and "
            f"it is polled and delivered; or allow one new send (billed again): '{job.id} resend' in that input, "
            f"or: director ledger resend {job.id}.")


def interrupt_message(generation_id: str) -> str:
    return (f"Interrupted. Luma job {generation_id} keeps running at Luma and is billed; queue the same graph "
            "again to pick it up from Director's job ledger (nothing is paid twice).")


class _TakenOver(Exception):
    """This render no longer holds its ledger row (another run of the same shot took it over); it
    sent nothing new and follows the other run."""


def _held(job: Job | None) -> Job:
    """The row a guarded transition returned, or _TakenOver when the render no longer held it."""
    if job is None:
        raise _TakenOver("another run of the same shot took this render's ledger row over")
    return job


@dataclass
class _Run:
    """What one render carries between its steps."""

    req: ShotRequest
    target: RenderTarget
    hooks: RenderHooks
    transport: LumaTransport
    owner: str = ""
    slots: JobSlots | None = None
    created: float | None = None  # monotonic time Luma created this render's job (None: resumed)
    reserved: int = 0
    started: float = field(default_factory=time.monotonic)
    abort: bool = False  # the render's task was cancelled: send nothing more

    def stopped(self) -> bool:
        return self.abort or self.hooks.cancelled()


class _Keeper:
    """Keeps every ledger row one render holds fresh, from a thread: the heartbeat goes on through
    every wait (429 back-off, job slot, polling, downloads), even while the event loop is busy, so a
    live render is never taken for dead. On exit, jobs it still follows are let go for the next run."""

    def __init__(self, ledger: Ledger, owner: str, period_s: float):
        self.ledger, self.owner, self.period_s = ledger, owner, max(0.05, period_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="director-luma-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.period_s):
            with contextlib.suppress(LedgerError):
                self.ledger.heartbeat(self.owner)

    def __enter__(self) -> "_Keeper":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(LedgerError):
            self.ledger.release_all(self.owner)


def _progress(hooks: RenderHooks, step: int, text: str) -> None:
    """Advance the progress bar, noticing an interrupt first: ComfyUI's bar raises its own
    exception on a pending interrupt, which would skip the message about the running job."""
    if hooks.cancelled():
        raise Cancelled("Interrupted by the user.")
    hooks.progress(step, STEPS, text)
