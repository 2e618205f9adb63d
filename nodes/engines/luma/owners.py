"""Who holds a ledger row, and whether that holder still runs: the owner token (the lease's fencing
token) and process liveness on this host. No clocks: a process is alive or gone, whatever any
machine's wall clock says."""

from __future__ import annotations

import os
import socket
import sys
import uuid


def owner_token() -> str:
    """Who holds a row: host, process id with its start time (so a reused PID is not taken for the
    dead owner), and a per-render nonce: ``host:pid@start:nonce``."""
    pid = os.getpid()
    start = process_start(pid) or ""
    return f"{socket.gethostname()}:{pid}@{start}:{uuid.uuid4().hex[:12]}"


def owner_alive(owner: str | None) -> bool:
    """False only when the owner ran on this host and its process is gone (a crash or kill), or
    its PID now belongs to a process that started at another time. Anything unclear: alive."""
    try:
        host, pid_field, _ = (owner or "").rsplit(":", 2)
        pid_text, _, start = pid_field.partition("@")
        pid = int(pid_text)
    except ValueError:
        return True
    if host != socket.gethostname():
        return True
    now = process_start(pid)
    if now is None:
        return False
    if now == UNKNOWN:
        return _pid_exists(pid)
    return not start or start == UNKNOWN or now == start


UNKNOWN = "?"


def process_start(pid: int) -> str | None:
    """A text that identifies when process ``pid`` started (compare for equality only), None when no
    such process runs, or UNKNOWN when this platform cannot tell."""
    if sys.platform.startswith("linux"):
        return _start_linux(pid)
    if sys.platform == "win32":
        return _start_windows(pid)
    return _start_ps(pid)


def _start_linux(pid: int, proc: str = "/proc") -> str | None:
    """Field 22 of /proc/<pid>/stat: the start time in clock ticks after boot."""
    try:
        with open(f"{proc}/{int(pid)}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except FileNotFoundError:
        return None
    except OSError:
        return UNKNOWN
    fields = stat[stat.rfind(")") + 2:].split()  # the command name may hold spaces and ')'
    if len(fields) < 20:
        return UNKNOWN
    if fields[0] in ("Z", "X"):  # a zombie has ended; only its exit status is left
        return None
    return fields[19]


def _start_windows(pid: int, kernel32=None) -> str | None:
    """The process creation time from OpenProcess + GetProcessTimes (ctypes, no extra package)."""
    import ctypes
    from ctypes import wintypes

    k32 = kernel32
    if k32 is None:
        k32 = ctypes.WinDLL("kernel32", use_last_error=True)
        k32.OpenProcess.restype = wintypes.HANDLE  # a handle is pointer-sized; the default int is not
        k32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
        k32.GetExitCodeProcess.argtypes = (wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD))
        k32.GetProcessTimes.argtypes = (wintypes.HANDLE,) + (ctypes.POINTER(wintypes.FILETIME),) * 4
        k32.CloseHandle.argtypes = (wintypes.HANDLE,)
    query_limited, still_active = 0x1000, 259
    error_invalid_parameter = 87
    handle = k32.OpenProcess(query_limited, False, int(pid))
    if not handle:
        err = ctypes.get_last_error() if kernel32 is None else k32.GetLastError()
        return None if err == error_invalid_parameter else UNKNOWN  # 87: no process has this id
    try:
        code = wintypes.DWORD()
        if k32.GetExitCodeProcess(handle, ctypes.byref(code)) and code.value != still_active:
            return None  # ended; the handle of another holder keeps its record
        created, exited, kernel, user = (wintypes.FILETIME() for _ in range(4))
        if not k32.GetProcessTimes(handle, ctypes.byref(created), ctypes.byref(exited), ctypes.byref(kernel),
                                   ctypes.byref(user)):
            return UNKNOWN
        return str((created.dwHighDateTime << 32) | created.dwLowDateTime)
    finally:
        k32.CloseHandle(handle)


def _start_ps(pid: int) -> str | None:
    """macOS and other Unixes: ``ps -o lstart= -p PID`` (the start time, to the second)."""
    import subprocess

    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(int(pid))], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    text = " ".join(out.stdout.split())
    if out.returncode != 0 and not text:
        return None if _pid_exists(pid) is False else UNKNOWN
    return text or None


def _pid_exists(pid: int) -> bool:
    if sys.platform == "win32":
        return True  # the Windows path above answers; nothing better here
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
