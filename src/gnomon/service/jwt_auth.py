"""External JWTs (an identity provider's access tokens) as gnomon principals.

Verified against a configured PEM key or JWKS file (no network), with audience and issuer.
Roles come from a configurable claim; they map onto gnomon as:

- a role listed in `jwt_admin_roles` (default "admin") → a gnomon admin (bypasses
  reservations, sees every space);
- "manager", "developer" or "viewer" → that role in `jwt_space`;
- no such role → `jwt_default_role` in `jwt_space` (default "developer"), or none.

The principal's `token_id` is `jwt:<sub>` (a reservation's owner): namespaced, so no
subject can stand for a gnomon token (whose ids are ULIDs) or a face's own agent.
"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

from gnomon.config import Settings
from gnomon.domain import ROLE_RANK, Principal, Role
from gnomon.errors import Unauthorized

LEEWAY_S = 30.0
JWT_PREFIX = "jwt:"


def looks_like_jwt(secret: str) -> bool:
    return secret.startswith("eyJ") and secret.count(".") == 2


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """A claim by its name, else by a dotted path into nested objects."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


class ExternalJwt:
    """Verifies bearer JWTs when a key is configured; `enabled` is False otherwise."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._key: Any = None
        self._keys: dict[str, PyJWK] = {}
        if settings.jwt_public_key_file is not None:
            self._key = _public_key(settings.jwt_public_key_file.read_bytes())
        if settings.jwt_jwks_file is not None:
            jwks = PyJWKSet.from_dict(json.loads(settings.jwt_jwks_file.read_text()))
            self._keys = {k.key_id or f"#{i}": k for i, k in enumerate(jwks.keys)}
        self.enabled = self._key is not None or bool(self._keys)
        self.default_role = Role(settings.jwt_default_role) if settings.jwt_default_role else None

    def verify(self, token: str) -> tuple[Principal, float]:
        """The principal a valid token stands for, and when the token expires."""
        try:
            header = jwt.get_unverified_header(token)
            algorithm = header.get("alg")
            if algorithm not in self.settings.jwt_algorithms:
                raise Unauthorized(f"JWT algorithm {algorithm!r} is not accepted")
            claims = jwt.decode(
                token,
                key=self._key_for(header),
                algorithms=self.settings.jwt_algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid JWT: {exc}") from None
        return self.principal(claims), float(claims["exp"])

    def _key_for(self, header: dict[str, Any]) -> Any:
        kid = header.get("kid")
        if kid is not None and kid in self._keys:
            return self._keys[kid]
        if self._key is not None:
            return self._key
        if len(self._keys) == 1:
            return next(iter(self._keys.values()))
        raise Unauthorized(f"no configured key matches the JWT (kid {kid!r})")

    def principal(self, claims: dict[str, Any]) -> Principal:
        s = self.settings
        found = claim_at(claims, s.jwt_roles_claim)
        roles = [found] if isinstance(found, str) else found if isinstance(found, list) else []
        listed = tuple(dict.fromkeys(str(r) for r in roles))
        names = set(listed)
        admin = bool(names & set(s.jwt_admin_roles))
        granted = [Role(r) for r in names if r in Role.__members__]
        role = max(granted, key=ROLE_RANK.__getitem__, default=None)
        role = role or self.default_role
        sub = str(claims["sub"])
        name = claims.get("name") or claims.get("nickname") or claims.get("email") or sub
        return Principal(
            token_id=JWT_PREFIX + sub,
            name=str(name),
            admin=admin,
            roles={s.jwt_space: role} if role else {},
            jwt_roles=listed,
        )


def _public_key(pem: bytes) -> Any:
    """A public key from PEM: a bare key, or the one in an X.509 certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if b"BEGIN CERTIFICATE" in pem:
        return x509.load_pem_x509_certificate(pem).public_key()
    return load_pem_public_key(pem)


def expiry(now_monotonic: float, exp: float, cache_s: float) -> float:
    """Until when (monotonic) a verified token may be served from the cache."""
    return now_monotonic + max(0.0, min(cache_s, exp - time.time()))
