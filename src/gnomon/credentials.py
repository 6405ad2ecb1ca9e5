"""What counts as a credential in what users store (http headers, environments, URLs), and
how it is blotted out. Pure; who may see credentials is the service's decision."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "********"
HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
WORDS = ("token", "secret", "password", "passwd", "credential", "api-key", "apikey", "private-key")


def is_credential(name: str) -> bool:
    """Whether a header, variable or field of this name holds a credential: the headers
    Authorization, Proxy-Authorization, Cookie, Set-Cookie and X-Api-Key, and any name with
    token, secret, password, passwd, credential, api key or private key in it (any case,
    '_' or '-')."""
    lowered = name.lower().replace("_", "-")
    return lowered in HEADERS or any(w in lowered for w in WORDS)


def mask_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` with those under credential names blotted out."""
    return {k: MASK if is_credential(k) and v else v for k, v in values.items()}


def mask_url(url: str) -> str:
    """`url` without its password and with credential query parameters blotted out."""
    try:
        parts = urlsplit(url)
        if parts.password is not None:
            host = parts.netloc.rsplit("@", 1)[1]
            parts = parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}")
        if parts.query:
            query = parse_qsl(parts.query, keep_blank_values=True)
            if any(is_credential(k) for k, _ in query):
                masked = [(k, MASK if is_credential(k) else v) for k, v in query]
                parts = parts._replace(query=urlencode(masked, safe="*"))
        return urlunsplit(parts)
    except ValueError:
        return MASK


def mask_json(value: Any, depth: int = 0) -> Any:
    """A JSON document with the values of credential-named fields blotted out."""
    if depth > 32:
        return MASK
    if isinstance(value, dict):
        return {
            k: MASK if is_credential(str(k)) and v else mask_json(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_json(v, depth + 1) for v in value]
    return value


def redact(data: bytes, secrets: Mapping[str, str]) -> bytes:
    """`data` with the values of credential headers (and their part after a scheme, as in
    `Bearer <token>`) blotted out: an echo service must not copy them into a log."""
    texts = set()
    for name, value in secrets.items():
        if is_credential(name):
            texts |= {value, value.partition(" ")[2]}
    for text in sorted((t for t in texts if len(t) >= 4), key=len, reverse=True):
        data = data.replace(text.encode(errors="replace"), MASK.encode())
    return data
