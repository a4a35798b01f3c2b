"""Who the gateway says the user is, read from a WSGI/ASGI ``META`` dict.
Pure Python, no Django import, so it can be tested and reused alone.

An empty or missing user header means nobody is signed in. With an
assertion key, the signed assertion (``BODY.SIG``, both base64url without
padding; SIG = HMAC-SHA256 of the BODY text; BODY = JSON with ``v``,
``user``, ``groups``, ``iat``, ``exp``) must be valid, unexpired and name the
same user, or the request is anonymous: then a request that reached the app
without passing the gateway cannot claim a user by sending the header.
"""

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Identity:
    user: str
    email: str = ""
    name: str = ""
    groups: tuple = field(default_factory=tuple)


def meta_key(header: str) -> str:
    """``X-Remote-User`` as WSGI spells it in META: ``HTTP_X_REMOTE_USER``."""
    return "HTTP_" + header.upper().replace("-", "_")


def _text(meta, header: str) -> str:
    # WSGI hands header bytes over as latin-1 text (PEP 3333); the gateway
    # sends UTF-8, so a name like "Zoë" is decoded back here.
    raw = meta.get(meta_key(header), "")
    try:
        return raw.encode("latin-1").decode("utf-8").strip()
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw.strip()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_assertion(value: str, key: bytes, now: Optional[float] = None) -> Optional[dict]:
    """The claims of a valid, unexpired assertion, else None."""
    body, dot, sig = value.partition(".")
    if not body or not dot:
        return None
    want = base64.urlsafe_b64encode(hmac.new(key, body.encode("ascii", "replace"), hashlib.sha256).digest())
    if not hmac.compare_digest(want.rstrip(b"=").decode(), sig):
        return None
    try:
        claims = json.loads(_b64decode(body))
    except ValueError:
        return None
    if not isinstance(claims, dict) or claims.get("v") != 1:
        return None
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp <= (time.time() if now is None else now):
        return None
    return claims


def read_identity(
    meta,
    user_header="X-Remote-User",
    email_header="X-Remote-Email",
    name_header="X-Remote-Name",
    groups_header="X-Remote-Groups",
    assertion_header="X-Gatehouse-Assertion",
    assertion_key: Optional[bytes] = None,
) -> Optional[Identity]:
    """The signed-in user, or None for an anonymous request."""
    user = _text(meta, user_header)
    if not user:
        return None
    groups = tuple(g.strip() for g in _text(meta, groups_header).split(",") if g.strip())
    if assertion_key is not None:
        claims = verify_assertion(meta.get(meta_key(assertion_header), ""), assertion_key)
        if claims is None or claims.get("user") != user:
            return None
        # The signed groups are the ones to believe.
        groups = tuple(str(g) for g in claims.get("groups", []))
    return Identity(
        user=user,
        email=_text(meta, email_header),
        name=_text(meta, name_header),
        groups=groups,
    )
