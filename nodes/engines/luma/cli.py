"""``director ledger``: the Luma job ledger from the command line.

    director ledger [--user-dir DIR | --ledger PATH_OR_URL] list [--state STATE] [--json]
    director ledger ... resolve ROW JOB_ID     # the job found in Luma's app for an uncertain shot
    director ledger ... resend ROW             # allow one new send (billed again)

``--user-dir`` is ComfyUI's user folder (``ComfyUI/user``; the ledger is
``director/luma_jobs.sqlite3`` in it, or the database ``DIRECTOR_LEDGER_URL`` names, from the
environment or ``director/ledger_url`` there); without either option ``./user`` is used (run from
the ComfyUI folder). ``resolve``/``resend`` are the same step as the Luma Engine node's
``resolve_uncertain`` input (resolve.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("ledger", help="list Luma jobs and shots; resolve a stopped (uncertain) shot",
                              description=__doc__.split("\n\n")[0])
    where = p.add_mutually_exclusive_group()
    where.add_argument("--user-dir", help="ComfyUI's user folder (default: ./user)")
    where.add_argument("--ledger", help="the ledger file, or a database URL")
    sub = p.add_subparsers(dest="ledger_cmd", required=True)
    ls = sub.add_parser("list", help="every ledger row: shot, state, Luma job, credits")
    ls.add_argument("--state", help="only rows in this state (e.g. uncertain)")
    ls.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    rs = sub.add_parser("resolve", help="give the job id found in Luma's app for an uncertain row")
    rs.add_argument("row", type=int)
    rs.add_argument("job_id")
    rn = sub.add_parser("resend", help="allow one new send of an uncertain/failed row's shot (billed again)")
    rn.add_argument("row", type=int)
    p.set_defaults(run=run)


def _location(args) -> str | Path:
    from .ledger import LEDGER_FILE

    from .ledger_postgres import configured_location

    if args.ledger:
        return args.ledger
    user = Path(args.user_dir) if args.user_dir else Path("user")
    url = configured_location(user)  # DIRECTOR_LEDGER_URL: the fleet's shared ledger
    if url:
        return url
    path = user / LEDGER_FILE
    if not path.is_file():
        raise SystemExit(f"director ledger: no ledger at {path}; pass --user-dir (ComfyUI's user folder) or --ledger.")
    return path


def run(args) -> int:
    from ...common.errors import DirectorError
    from .ledger_backends import open_ledger
    from .resolve import Resolution, apply_resolve, parse_resolve

    try:
        ledger = open_ledger(_location(args))
        if args.ledger_cmd == "list":
            return _list(ledger, args.state, args.json)
        res = (parse_resolve(f"{args.row} {args.job_id}") if args.ledger_cmd == "resolve"  # the node's checks
               else Resolution(args.row, None))
        row = apply_resolve(ledger, res, print)
        print(f"row {row.id}: {row.state}" + (f", job {row.generation_id}" if row.generation_id else ""))
        return 0
    except DirectorError as e:
        print(f"director ledger: {e}")
        return 2


def _list(ledger, state: str | None, as_json: bool) -> int:
    rows = [j for j in ledger.jobs() if state is None or j.state == state]
    if as_json:
        for j in rows:
            print(json.dumps({"row": j.id, "shot": j.request_hash[:16], "state": j.state, "job": j.generation_id,
                              "credits": j.credits, "created": j.created_at, "summary": j.summary,
                              "failure_code": j.failure_code, "message": j.message}))
        return 0
    if not rows:
        print("no rows" + (f" in state '{state}'" if state else ""))
        return 0
    table = [("row", "shot", "state", "Luma job", "credits", "created", "what")]
    for j in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(j.created_at))
        state_text = j.state + (f" ({j.failure_code})" if j.failure_code else "")
        table.append((str(j.id), j.request_hash[:12], state_text, j.generation_id or "-", str(j.credits), when,
                      j.summary[:60]))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    stopped = [j for j in rows if j.state == "uncertain"]
    for j in stopped:
        print(f"row {j.id} is stopped: {j.message or 'the send may have made a job'}. Resolve it: "
              f"director ledger resolve {j.id} JOB_ID (from Luma's app), or director ledger resend {j.id}.")
    return 0
