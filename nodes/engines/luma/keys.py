"""Where the Luma API key comes from, and how it is kept out of everything Director writes.

The key is never a widget value (widgets end up in workflow JSON, PNG/MP4 metadata and
ComfyUI's history). It is read, in this order, from:

1. the environment variable ``LUMA_AGENTS_API_KEY`` (the official client's own variable);
2. the file ``<ComfyUI user folder>/director/luma_api_key`` (first non-empty line; e.g.
   ``ComfyUI/user/director/luma_api_key``; keep it readable by your account only).

The key is resolved when a shot renders, so a changed file takes effect without touching
the graph. Inside Director it travels as a :class:`SecretKey`, whose ``repr``/``str`` never show
it, and every message built from a client exception goes through :func:`redact`.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ...common.errors import DirectorError

ENV_VAR = "LUMA_AGENTS_API_KEY"
BASE_URL_ENV = "LUMA_BASE_URL"
DEFAULT_BASE_URL = "https://agents.lumalabs.ai/v1"
KEY_FILE = Path("director") / "luma_api_key"

_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\",}]+")


class SecretKey:
    """An API key that does not print itself (repr, str, f-strings, logging, pickling by repr)."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str):
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    @property
    def account(self) -> str:
        """A one-way tag of the key (which account a ledger row belongs to); never the key."""
        return hashlib.sha256(b"director-luma-account\0" + self._value.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"SecretKey(<hidden>, source={self.source!r})"

    __str__ = __repr__

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):  # never let pickling carry the key into a file
        raise TypeError("a SecretKey cannot be pickled")


@dataclass(frozen=True)
class KeySource:
    """How to find the key at render time: an explicit key (tests, scripts) or env + user file."""

    user_dir: Path | None = None
    explicit: SecretKey | None = None

    def key_file(self) -> Path | None:
        return (Path(self.user_dir) / KEY_FILE) if self.user_dir is not None else None

    @staticmethod
    def shown_key_file() -> str:
        """The key file as messages name it: inside the user folder, never its server path."""
        return f"{Path(KEY_FILE).as_posix()} in ComfyUI's user folder"

    def resolve(self) -> SecretKey:
        """Return the key, or raise one DirectorError that says where to put it."""
        if self.explicit is not None:
            return self.explicit
        env = os.environ.get(ENV_VAR, "").strip()
        if env:
            return SecretKey(env, f"environment variable {ENV_VAR}")
        path = self.key_file()
        if path is not None and path.is_file():
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as e:
                raise DirectorError(f"Luma engine: cannot read the key file {self.shown_key_file()}: "
                                    f"{e.strerror or e}.",
                                    field="api_key") from None
            value = next((ln.strip() for ln in lines if ln.strip()), "")
            if value:
                return SecretKey(value, f"key file {self.shown_key_file()}")
        where = f" or write it into the file {self.shown_key_file()}" if path is not None else ""
        raise DirectorError(
            f"Luma engine: no API key. Set the environment variable {ENV_VAR}{where} "
            "(keys come from platform.lumalabs.ai; Director never takes a key from a widget).",
            field="api_key",
        )

    def describe(self) -> str:
        """Where the key was found, for the node's status line (never the key itself)."""
        return self.resolve().source


def base_url_from_env(explicit: str | None = None) -> str:
    """The API base URL: the given one, ``LUMA_BASE_URL`` (proxies, tests) or Luma's own."""
    url = (explicit or os.environ.get(BASE_URL_ENV, "") or DEFAULT_BASE_URL).strip()
    if not re.match(r"^https?://", url):
        raise DirectorError(f"Luma engine: base URL '{url}' must start with http:// or https://.", field="base_url")
    return url.rstrip("/")


def redact(text: object, *secrets: SecretKey | str | None) -> str:
    """``text`` with every given secret and any ``Bearer <token>`` replaced by ``[redacted]``."""
    out = str(text)
    for s in secrets:
        value = s.reveal() if isinstance(s, SecretKey) else s
        if value:
            out = out.replace(value, "[redacted]")
    return _BEARER.sub(r"\1[redacted]", out)
