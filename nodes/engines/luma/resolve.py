"""The user's one step on a stopped shot, the same from the Luma Engine node's last input
(``resolve_uncertain``) and from ``director ledger``:

* ``ROW JOB_ID``: the job found in Luma's app for an 'uncertain' row: it is polled and delivered
  by the next run of the shot (nothing new is sent);
* ``ROW resend``: one new send of an 'uncertain' row's shot, or of a shot whose job failed for a
  reason a retry cannot fix (billed again).

Both are guarded transitions keyed by the row, so a value left in the node's input is harmless:
applied once, then a no-op on every later run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...common.errors import DirectorError
from .ledger import Job, Ledger

FIELD = "resolve_uncertain"
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{2,127}$")


@dataclass(frozen=True)
class Resolution:
    row: int
    job_id: str | None  # None: resend


def parse_resolve(text: str | None) -> Resolution | None:
    """``"ROW JOB_ID"`` / ``"ROW resend"`` (blank: None). Bad input: one error naming the input."""
    text = (text or "").strip()
    if not text:
        return None
    parts = text.replace(",", " ").replace("=", " ").split()
    if len(parts) != 2 or not parts[0].isdigit():
        raise DirectorError(f"{FIELD}: '{text[:60]}' is not 'ROW JOB_ID' or 'ROW resend' (ROW is the ledger row the "
                            "message named, e.g. '12 0f3c...' or '12 resend'); clear it when there is nothing to "
                            "resolve.", field=FIELD)
    row, what = int(parts[0]), parts[1]
    if what.lower() == "resend":
        return Resolution(row, None)
    if not _JOB_ID.match(what):
        raise DirectorError(f"{FIELD}: '{what[:60]}' does not look like a Luma job id (copy it from Luma's app).",
                            field=FIELD)
    return Resolution(row, what)


def apply_resolve(ledger: Ledger, res: Resolution, status=lambda text: None) -> Job:
    """Apply ``res`` (idempotent); returns the row. Raises a DirectorError naming the row and its state
    when the row cannot take it."""
    try:
        before = ledger.get(res.row)
    except KeyError:
        raise DirectorError(f"{FIELD}: Director's job ledger has no row {res.row}.", field=FIELD) from None
    if res.job_id is not None:
        if before.generation_id == res.job_id:
            return before  # applied before
        row = ledger.resolve_uncertain(res.row, res.job_id)
        if row is None:
            raise DirectorError(f"{FIELD}: ledger row {res.row} is '{before.state}'"
                                f"{f' with job {before.generation_id}' if before.generation_id else ''}; only an "
                                "uncertain row takes a job id. Clear the input.", field=FIELD)
        status(f"ledger row {res.row}: job {res.job_id} given; the next run of the shot polls and delivers it")
        return row
    if before.state == "dismissed":
        return before  # applied before
    row = ledger.allow_resend(res.row)
    if row is None:
        raise DirectorError(f"{FIELD}: ledger row {res.row} is '{before.state}'; only an uncertain, failed or expired "
                            "row can be sent again. Clear the input.", field=FIELD)
    status(f"ledger row {res.row}: one new send allowed (billed again)")
    return row
