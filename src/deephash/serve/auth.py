"""Write tokens for ``deephash serve``: who may add and remove items.

A server started with a write token answers ``POST /items`` and ``DELETE /items/{id}`` only for
requests carrying ``Authorization: Bearer <token>``; any other request gets 401 JSON
(``{"error": "unauthorized", ...}``) before its body is read, and nothing changes. The comparison
takes the same time wherever the given token differs (:func:`hmac.compare_digest`), and the token is
never logged or echoed in an answer.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

__all__ = ["TOKEN_ENV", "is_loopback", "load_token", "token_matches"]

TOKEN_ENV = "DEEPHASH_TOKEN"


def load_token(path: str | os.PathLike[str] | None) -> str | None:
    """The write token from ``path`` (its first line, stripped), else from ``$DEEPHASH_TOKEN``,
    else ``None``. An empty or unreadable file is a ``ValueError`` that does not show its content."""
    if path is None:
        env = os.environ.get(TOKEN_ENV, "").strip()
        return env or None
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the token file {p}: {type(exc).__name__}") from None
    token = lines[0].strip() if lines else ""
    if not token:
        raise ValueError(f"the token file {p} is empty; put the token on its first line")
    return token


def token_matches(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header value is ``Bearer <token>`` (constant-time compare)."""
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
