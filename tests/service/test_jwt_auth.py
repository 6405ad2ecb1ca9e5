"""External JWTs: keys from a PEM file or a JWKS file, audience and issuer, roles by claim."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gnomon.config import Settings
from gnomon.domain import Role
from gnomon.errors import Unauthorized
from gnomon.service.jwt_auth import ExternalJwt, looks_like_jwt

AUD, ISS = "gnomon-test", "https://idp.test/"


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "u-1", "aud": AUD, "iss": ISS, "exp": int(time.time()) + 60, **extra}


@pytest.fixture
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def jwks_settings(tmp_path: Path, key: ec.EllipticCurvePrivateKey, **kw: Any) -> Settings:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "ES256", "use": "sig"}]}))
    return Settings(jwt_jwks_file=path, jwt_audience=AUD, jwt_issuer=ISS, **kw)


def test_es256_from_a_jwks_file_with_nested_roles(tmp_path: Path, ec_key: Any) -> None:
    auth = ExternalJwt(jwks_settings(tmp_path, ec_key, jwt_roles_claim="realm.roles"))
    token = jwt.encode(
        claims(realm={"roles": ["viewer", "manager"]}, name="Ada"),
        ec_key,
        algorithm="ES256",
        headers={"kid": "k1"},
    )
    assert looks_like_jwt(token)
    who, exp = auth.verify(token)
    assert (who.token_id, who.name, who.admin) == ("jwt:u-1", "Ada", False)  # never a token id
    assert who.roles == {"default": Role.manager}  # the highest role claimed
    assert exp > time.time()


def test_roles_map_onto_gnomon(tmp_path: Path, ec_key: Any) -> None:
    settings = jwks_settings(tmp_path, ec_key, jwt_space="observatory")
    auth = ExternalJwt(settings)
    claim = settings.jwt_roles_claim  # a namespaced top-level claim, dots and all
    admin = auth.principal(claims(**{claim: ["admin"]}))
    assert admin.admin
    plain = auth.principal(claims())
    assert not plain.admin and plain.roles == {"observatory": Role.developer}
    strict = ExternalJwt(jwks_settings(tmp_path, ec_key, jwt_default_role=""))
    assert strict.principal(claims(**{claim: ["stranger"]})).roles == {}


def test_bad_tokens_are_refused(tmp_path: Path, ec_key: Any) -> None:
    auth = ExternalJwt(jwks_settings(tmp_path, ec_key))
    refused = [
        jwt.encode(claims(aud="other"), ec_key, algorithm="ES256"),
        jwt.encode(claims(iss="https://evil.test/"), ec_key, algorithm="ES256"),
        jwt.encode(claims(exp=int(time.time()) - 3600), ec_key, algorithm="ES256"),
        jwt.encode({k: v for k, v in claims().items() if k != "exp"}, ec_key, algorithm="ES256"),
        jwt.encode(claims(), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256"),
        jwt.encode(claims(), "a-shared-secret-long-enough-for-hs256!", algorithm="HS256"),
        "eyJhbGciOiJub25lIn0.e30.",
        "eyJ.not.json",
    ]
    for token in refused:
        with pytest.raises(Unauthorized):
            auth.verify(token)


def test_rs256_from_a_pem_key(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    auth = ExternalJwt(Settings(jwt_public_key_file=pem, jwt_audience=AUD, jwt_issuer=ISS))
    assert auth.enabled
    who, _ = auth.verify(jwt.encode(claims(), key, algorithm="RS256"))
    assert who.token_id == "jwt:u-1"
    assert not ExternalJwt(Settings()).enabled
