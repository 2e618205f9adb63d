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
BASE_URL_FILE = Path("director") / "luma_base_url"

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


@dataclass(frozen=True)
class BaseUrl:
    """The API base URL and the setting it came from (named in every error about it)."""

    url: str
    source: str


def base_url_from_env(explicit: str | None = None, user_dir: Path | None = None) -> str:
    """The API base URL (see :func:`resolve_base_url`)."""
    return resolve_base_url(explicit, user_dir).url


def resolve_base_url(explicit: str | None = None, user_dir: Path | None = None) -> BaseUrl:
    """The API base URL: the given one, the environment variable ``LUMA_BASE_URL`` (proxies, tests),
    the file ``<ComfyUI user folder>/director/luma_base_url``, or Luma's own. Plain ``http://`` only
    for a loopback host (the emulator): anywhere else the key would travel in clear."""
    if explicit:
        found = BaseUrl(explicit.strip(), "the base_url argument")
    elif os.environ.get(BASE_URL_ENV, "").strip():
        found = BaseUrl(os.environ[BASE_URL_ENV].strip(), f"the environment variable {BASE_URL_ENV}")
    else:
        found = None
        path = Path(user_dir) / BASE_URL_FILE if user_dir is not None else None
        if path is not None and path.is_file():
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as e:
                raise DirectorError(f"Luma engine: cannot read {Path(BASE_URL_FILE).as_posix()} in ComfyUI's user "
                                    f"folder: {e.strerror or e}.", field="base_url") from None
            value = next((ln.strip() for ln in lines if ln.strip()), "")
            if value:
                found = BaseUrl(value, f"the file {Path(BASE_URL_FILE).as_posix()} in ComfyUI's user folder")
        found = found or BaseUrl(DEFAULT_BASE_URL, "Director's default")
    url = found.url.rstrip("/")
    if not re.match(r"^https?://[^/]", url):
        raise DirectorError(f"Luma engine: base URL '{url}' (from {found.source}) must start with https:// "
                            f"(set {BASE_URL_ENV} or leave it unset for Luma's own).", field="base_url")
    if url.lower().startswith("http://") and not is_loopback(url):
        raise DirectorError(f"Luma engine: base URL '{url}' (from {found.source}) uses plain http:// to another "
                            f"machine, so the API key would travel in clear; use https:// (fix {BASE_URL_ENV}). "
                            "Plain http:// is accepted only on this machine (127.0.0.1, the emulator).",
                            field="base_url")
    return BaseUrl(url, found.source)


def is_loopback(url: str) -> bool:
    """True when ``url``'s host is this machine (127.0.0.0/8, ::1, localhost)."""
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact(text: object, *secrets: SecretKey | str | None) -> str:
    """``text`` with every given secret and any ``Bearer <token>`` replaced by ``[redacted]``."""
    out = str(text)
    for s in secrets:
        value = s.reveal() if isinstance(s, SecretKey) else s
        if value:
            out = out.replace(value, "[redacted]")
    return _BEARER.sub(r"\1[redacted]", out)
