import math
import random

import pytest

from gnomon.plans.sky import Site, Track, ephem_altaz, wrap180

ATACAMA = Site("ATACAMA", -22.958, -67.786, 5200.0)


@pytest.mark.parametrize("body", ["sun", "saturn", "uranus", "moon"])
def test_track_matches_pyephem(body: str) -> None:
    rng = random.Random(body)
    t0 = 1672531200.0  # 2023-01-01
    track = Track(body, ATACAMA, t0, t0 + 3 * 86400)
    tol = 5e-3 if body == "moon" else 1e-3  # the moon's parallax turns with the earth
    for _ in range(200):
        t = rng.uniform(t0, t0 + 3 * 86400)
        alt, az = track.altaz(t)
        e_alt, e_az = ephem_altaz(body, ATACAMA, t)
        assert abs(alt - e_alt) < tol
        assert abs(track.alt(t) - e_alt) < tol
        if e_alt < 89:  # azimuth is ill-defined at the zenith
            assert abs(wrap180(az - e_az)) * max(0.05, math.cos(math.radians(e_alt))) < tol


def test_site_of_the_contract() -> None:
    # Saturn a little above the horizon in the west at the turn of 2023, seen from the site.
    alt, az = ephem_altaz("saturn", ATACAMA, 1672531200.0)
    assert 25 < alt < 27 and 263 < az < 265


def test_wrap180() -> None:
    assert wrap180(190) == -170
    assert wrap180(-190) == 170
    assert wrap180(0) == 0
