"""Who a face's site route acts as (Sites.face_caller), every branch: keys, tokens, open and
closed faces, required keys, web pages."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from gnomon.domain import Principal, Role
from gnomon.errors import Forbidden, Unauthorized
from gnomon.service import Service
from gnomon.service.sites import SiteFace
from tests.service.conftest import ADMIN

FACE = SiteFace(agent="photonranch", space="default", action={"type": "task", "name": "x"})
USER = Principal(token_id="01HZZZZZZZZZZZZZZZZZZZZZZZ", name="u", roles={"default": Role.viewer})
PAGE = "https://evil.example"


async def caller(
    svc: Service,
    site: str,
    *,
    face: SiteFace = FACE,
    key: str | None = None,
    holder: Principal | None = None,
    origin: str | None = None,
    acts: bool = True,
) -> Principal:
    return await svc.sites.face_caller(face, site, key=key, holder=holder, origin=origin, acts=acts)


async def test_face_callers(svc: Service) -> None:
    key = (await svc.sites.set_key(ADMIN, "keyed"))["key"]
    closed, strict = replace(FACE, open=False), replace(FACE, require_key=True)

    site = await caller(svc, "open")
    assert (site.site, site.roles, site.admin) == ("open", {}, False)
    assert (await caller(svc, "keyed", key=key)).site == "keyed"
    assert (await caller(svc, "keyed", key=key, origin=PAGE, face=closed)).site == "keyed"
    assert await caller(svc, "open", holder=USER, origin=PAGE) == USER
    assert await caller(svc, "keyed", holder=USER) == USER  # a token acts as itself
    assert (await caller(svc, "keyed", acts=False)).site == "keyed"  # reading stays open
    assert (await caller(svc, "open", face=strict, acts=False)).site == "open"

    refusals: list[tuple[type[Exception], dict[str, Any]]] = [
        (Unauthorized, {"site": "keyed"}),  # the site has a key
        (Unauthorized, {"site": "open", "face": strict}),  # keys are required
        (Unauthorized, {"site": "open", "face": closed, "acts": False}),
        (Unauthorized, {"site": "keyed", "key": "sk_wrong"}),
        (Unauthorized, {"site": "open", "key": key}),  # another site's key, or none there
        (Unauthorized, {"site": "keyed", "key": "sk_wrong", "holder": USER}),
        (Forbidden, {"site": "open", "origin": PAGE}),  # a web page may not act
    ]
    for error, options in refusals:
        with pytest.raises(error):
            await caller(svc, **options)
    assert (await caller(svc, "open", origin=PAGE, acts=False)).site == "open"
