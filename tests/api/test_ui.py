"""The web interface's files: served by `gnomon serve` itself, from the package, locked to
this origin."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

import gnomon.api.ui as ui

STATIC = Path(ui.__file__).parent / "static"


def test_page_and_assets_are_served_with_a_strict_policy(api: httpx.Client) -> None:
    r = api.get("/ui/", headers={"Authorization": ""})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    for src in re.findall(r'(?:src|href)="(static/[^"]+)"', r.text):
        asset = api.get(f"/ui/{src}")
        assert asset.status_code == 200, src
        assert asset.headers["content-security-policy"] == csp
    js = api.get("/ui/static/js/app.js")
    assert js.headers["content-type"].startswith(("text/javascript", "application/javascript"))


def test_nothing_is_fetched_from_elsewhere() -> None:
    for f in STATIC.rglob("*"):
        if f.suffix in (".js", ".css", ".html"):
            text = f.read_text()
            assert not re.search(r"(?:src|href|import|url)\W+(?:https?:)?//", text), f


def test_browsers_asking_for_the_root_are_sent_to_the_page(api: httpx.Client) -> None:
    r = api.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 307 and r.headers["location"] == "ui/"
    assert api.get("/ui").headers["location"] == "ui/"
    r = api.get("/", headers={"Accept": "application/json"})
    assert r.status_code == 404 and "/ui/" in r.json()["error"]["message"]
    assert api.get("/ui/static/nope.js").status_code == 404
    assert api.get("/ui/static/../../app.py").status_code == 404
