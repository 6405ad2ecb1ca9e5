from gnomon.plans.policy import Block, Constraints
from gnomon.plans.sky import Site, ephem_altaz
from gnomon.plans.verify import verify
from tests.plans.helpers import ts

SITE = Site("ATACAMA", -22.958, -67.786, 5200.0)
C = Constraints(site=SITE, min_angle_az=6, min_angle_alt=6, alt_range=(20, 90))
T0 = ts("2023-01-01 12:00")


def checks(report: dict) -> list[str]:
    return [p["check"] for p in report["problems"]]


def test_a_clean_plan_passes() -> None:
    _, az_s = ephem_altaz("sun", SITE, T0)  # point well away from the sun
    blocks = [Block("a", "survey", T0, T0 + 600, (az_s + 150) % 360, 30.0, 10.0)]
    report = verify(blocks, T0, T0 + 3600, C)
    assert report["ok"] and report["problems"] == []
    assert report["checks"] == ["window", "overlap", "alt", "sun"]


def test_each_rule_is_caught() -> None:
    _, az_s = ephem_altaz("sun", SITE, T0)
    far = (az_s + 150) % 360
    blocks = [
        Block("early", "survey", T0 - 60, T0 + 60, far, 30.0, 5.0),
        Block("over", "survey", T0 + 30, T0 + 120, far, 30.0, 5.0),
        Block("low", "survey", T0 + 200, T0 + 300, far, 10.0, 5.0),
        Block("late", "survey", T0 + 3500, T0 + 3700, far, 30.0, 5.0),
    ]
    report = verify(blocks, T0, T0 + 3600, C)
    assert not report["ok"]
    assert sorted(checks(report)) == ["alt", "overlap", "window", "window"]


def test_sun_is_caught_between_generation_samples() -> None:
    # A block whose box touches the sun for a moment only: at no 10 s sample, at some second.
    t = T0 + 3 * 3600
    alt_s, az_s = ephem_altaz("sun", SITE, t)
    # the sun's altitude crosses alt_s ± 6 at some instant; point where it passes 5.9° away
    block = Block("sunny", "survey", t - 5, t + 5, (az_s - 3) % 360, alt_s + 5.9, 3.0)
    report = verify([block], t - 5, t + 5, C)
    assert checks(report) == ["sun"]
    safe = Block("shade", "survey", t - 5, t + 5, (az_s + 20) % 360, alt_s, 3.0)
    assert verify([safe], t - 5, t + 5, C)["ok"]


def test_blocks_without_pointing_only_check_time() -> None:
    blocks = [Block("sleep", "wait", 0, 10), Block("sleep", "wait", 10, 20)]
    report = verify(blocks, 0, 20, Constraints())
    assert report["ok"] and report["checks"] == ["window", "overlap"]
    assert not verify([*blocks, Block("x", "wait", 15, 18)], 0, 20, Constraints())["ok"]


def test_far_from_the_sun_costs_few_samples() -> None:
    _, az_s = ephem_altaz("sun", SITE, T0)
    block = Block("a", "survey", T0, T0 + 6 * 3600, (az_s + 180) % 360, 20.0, 1.0)
    report = verify([block], T0, T0 + 6 * 3600, C)
    assert report["ok"] and report["sun_samples"] < 200
