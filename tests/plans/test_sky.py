import math
import random
from datetime import UTC, datetime, timedelta

import ephem
import pytest

from gnomon.plans.sky import ERR, US, Site, Sky, ephem_date, wrap180
from tests.plans.helpers import pyephem_altaz

ATACAMA = Site("ATACAMA", -22.958, -67.786, 5200.0)
T0 = 1672531200  # 2023-01-01


def test_ephem_date_is_pyephems_conversion_of_a_datetime() -> None:
    rng = random.Random(1)
    for _ in range(5000):
        us = (T0 + rng.randrange(-(10**9), 10**9)) * US + rng.choice([0, rng.randrange(US)])
        when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
        assert ephem_date(us) == float(ephem.Date(when))


@pytest.mark.parametrize("body", ["sun", "saturn", "uranus", "moon", "mars"])
def test_fast_model_is_pyephem(body: str) -> None:
    """Bit for bit almost always; within ERR always (1 single-precision step at most)."""
    sky = Sky(body, ATACAMA)
    rng = random.Random(body)
    same, n = 0, 1500
    for _ in range(n):
        us = (T0 + rng.randrange(0, 365 * 86400)) * US
        fast, exact = sky.altaz(us), sky.exact(us)
        same += fast == exact
        assert abs(fast[0] - exact[0]) <= ERR
        assert abs(wrap180(fast[1] - exact[1])) <= ERR
        assert abs(sky.alts([us // US])[0] - exact[0]) <= ERR
    assert same >= 0.98 * n


def test_exact_is_pyephem_with_its_default_atmosphere() -> None:
    when = datetime(2023, 1, 1, 3, 4, 5, tzinfo=UTC)
    obs = ephem.Observer()
    obs.lat, obs.lon, obs.elevation = "-22.958", "-67.786", 5200
    obs.date = ephem.Date(when)
    saturn = ephem.Saturn(obs)
    alt, az = Sky("saturn", ATACAMA).exact(round(when.timestamp()) * US)
    assert (alt, az) == (math.degrees(saturn.alt), math.degrees(saturn.az))
    assert obs.pressure == 1010 and obs.temp == 15  # refraction applied


def test_site_of_the_contract() -> None:
    # Saturn a little above the horizon in the west at the turn of 2023, seen from the site.
    alt, az = pyephem_altaz("saturn", ATACAMA, float(T0))
    assert 25 < alt < 27 and 263 < az < 265


def test_wrap180() -> None:
    assert wrap180(190) == -170
    assert wrap180(-190) == 170
    assert wrap180(0) == 0
