"""Credentials and signed sign-in tokens.

Each user (every reader and one admin) gets a random credential at build time. Only its scrypt
hash (RFC 7914, per-user random salt) is stored; the plain text goes to the admin-only
``key/credentials.csv``. After sign-in the app hands out a token
``base64url(payload).base64url(HMAC-SHA256(secret, payload))`` whose payload names the user,
the role and the expiry; the 256-bit secret lives in ``key/auth.json``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from cemsynth.reader_study.defaults import SCRYPT_N, SCRYPT_P, SCRYPT_R

Role = Literal["reader", "admin"]


@dataclass(frozen=True)
class UserRecord:
    """A stored user: role and scrypt hash of the credential (hex salt and hash)."""

    role: Role
    salt: str
    hash: str


@dataclass(frozen=True)
class TokenClaims:
    """What a valid token says: who, which role, expiry as Unix seconds."""

    user: str
    role: Role
    expires: float


class TokenError(Exception):
    """The token is malformed, forged or expired."""


def new_credential() -> str:
    """A random credential for one user (120 bits, URL-safe text)."""
    return secrets.token_urlsafe(15)


def new_secret() -> str:
    """A random 256-bit signing secret, hex."""
    return secrets.token_hex(32)


def _scrypt(credential: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        credential.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )


def hash_credential(credential: str, role: Role) -> UserRecord:
    """Hash ``credential`` with a fresh salt."""
    salt = secrets.token_bytes(16)
    return UserRecord(role=role, salt=salt.hex(), hash=_scrypt(credential, salt).hex())


_DUMMY = UserRecord(role="reader", salt="00" * 16, hash="00" * 32)


def check_credential(record: UserRecord | None, credential: str) -> bool:
    """True when ``credential`` matches ``record``. An unknown user (None) costs the same time."""
    target = record or _DUMMY
    digest = _scrypt(credential, bytes.fromhex(target.salt))
    return hmac.compare_digest(digest.hex(), target.hash) and record is not None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(secret: str, user: str, role: Role, now: float, ttl_s: float) -> str:
    """A signed token for ``user`` valid until ``now + ttl_s`` (Unix seconds)."""
    payload = json.dumps(
        {"sub": user, "role": role, "exp": now + ttl_s, "nonce": secrets.token_hex(8)},
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")
    body = _b64(payload)
    signature = hmac.new(bytes.fromhex(secret), body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def verify_token(secret: str, token: str, now: float) -> TokenClaims:
    """Check signature and expiry; raise TokenError when either fails."""
    body, dot, signature = token.partition(".")
    if not dot or not body or not signature:
        raise TokenError("malformed token")
    try:
        expected = hmac.new(bytes.fromhex(secret), body.encode("ascii"), hashlib.sha256).digest()
        given = _unb64(signature)
        claims: Any = json.loads(_unb64(body))
    except (ValueError, UnicodeError) as exc:
        raise TokenError("malformed token") from exc
    if not hmac.compare_digest(expected, given):
        raise TokenError("bad signature")
    if not isinstance(claims, dict):
        raise TokenError("malformed token")
    user, role, expires = claims.get("sub"), claims.get("role"), claims.get("exp")
    if not isinstance(user, str) or role not in ("reader", "admin"):
        raise TokenError("malformed token")
    if not isinstance(expires, int | float) or expires <= now:
        raise TokenError("expired token")
    return TokenClaims(user=user, role=role, expires=float(expires))
