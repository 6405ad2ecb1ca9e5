def test_ready(api):
    assert api.get("/readyz").json()["status"] == "ready"
