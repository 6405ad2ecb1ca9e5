"""Properties of every plan, for random windows and configs: `basic` keeps the original's
rules (survey as the brute-force rule gives it, carved by calibration scans that each last one
1-degree drift); `dummy` always verifies."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnomon.plans import policy, toast
from gnomon.plans.policy import Context
from gnomon.plans.verify import verify
from tests.plans.helpers import SHARED_SCHEDULE, reference_survey, ts
from tests.plans.test_basic import carve

SAMPLE_START = ts("2025-12-31 12:00")
YEAR_START = ts("2023-01-01 00:00")
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

angles = st.floats(min_value=0, max_value=30, allow_nan=False)
configs = st.fixed_dictionaries(
    {},
    optional={
        "calibration_targets": st.lists(
            st.sampled_from(["uranus", "saturn", "jupiter", "mars", "moon", "venus"]),
            max_size=3,
            unique=True,
        ),
        "rules": st.fixed_dictionaries(
            {},
            optional={
                "sun-avoidance": st.fixed_dictionaries(
                    {},
                    optional={
                        "min_angle_az": angles,
                        "min_angle_alt": angles,
                        "time_step": st.sampled_from([5.0, 10.0, 30.0, 60.0]),
                        "n_buffer": st.integers(1, 6),
                    },
                ),
                "alt-range": st.tuples(
                    st.floats(0, 60, allow_nan=False), st.floats(60, 90, allow_nan=False)
                ).map(lambda r: {"alt_range": list(r)}),
                "calibration-min-duration": st.floats(0, 3600, allow_nan=False).map(
                    lambda d: {"min_duration": d}
                ),
                "make-source-scan": st.floats(600, 7200, allow_nan=False).map(
                    lambda d: {"preferred_length": d}
                ),
            },
        ),
    },
)


def check(path: str, t0: float, t1: float, config: dict) -> None:
    t0, t1 = round(t0, 6), round(t1, 6)  # windows come to the microsecond
    p = policy.get("basic")
    cfg = p.config({**config, "master_schedule": path})
    out = p.generate(t0, t1, cfg, Context())
    blocks = out.blocks
    assert [b.t0 for b in blocks] == sorted(b.t0 for b in blocks)
    report = verify(blocks, t0, t1, out.constraints)
    assert not [x for x in report["problems"] if x["check"] == "overlap"]
    cal = [b for b in blocks if b.kind == "calibration"]
    lo, hi = cfg.rules.alt_range.alt_range
    for b in cal:
        assert b.name in cfg.calibration_targets
        assert t0 - 1 < b.t0 <= t1 and 0 < b.duration < 6100  # samples are whole seconds
        assert lo - 0.6 <= b.alt <= hi + 0.6
        assert b.throw == pytest.approx(1 / math.cos(math.radians(b.alt)), rel=1e-4)
    sa = cfg.rules.sun_avoidance
    rule = {
        "min_az": sa.min_angle_az,
        "min_alt": sa.min_angle_alt,
        "step": sa.time_step,
        "n_buffer": sa.n_buffer,
    }
    want = []
    for scan, x, y in reference_survey(path, t0, t1, **rule):
        parts = [(x, y)]
        for c in cal:
            parts = [part for a, b in parts for part in carve(a, b, c)]
        want += [(scan.patch, a, b) for a, b in parts]
    got = [(b.name, b.t0, b.t1) for b in blocks if b.kind == "survey"]
    assert sorted(got) == sorted(want)


@SETTINGS
@given(
    start=st.floats(0, 8 * 86400, allow_nan=False),
    length=st.floats(600, 86400, allow_nan=False),
    config=configs,
)
def test_basic_on_the_sample(start: float, length: float, config: dict) -> None:
    check(str(toast.sample_path()), SAMPLE_START + start, SAMPLE_START + start + length, config)


@SETTINGS
@given(
    start=st.floats(0, 364 * 86400, allow_nan=False),
    length=st.floats(600, 86400, allow_nan=False),
    config=configs,
)
def test_basic_on_the_real_schedule(start: float, length: float, config: dict) -> None:
    if not SHARED_SCHEDULE.exists():
        pytest.fail(f"{SHARED_SCHEDULE} is missing beside the repository")
    check(str(SHARED_SCHEDULE), YEAR_START + start, YEAR_START + start + length, config)


@SETTINGS
@given(
    t0=st.floats(0, 4e9, allow_nan=False),
    length=st.floats(0, 30 * 86400, allow_nan=False),
    seed=st.none() | st.integers(0, 2**32),
)
def test_dummy_always_verifies(t0: float, length: float, seed: int | None) -> None:
    p = policy.get("dummy")
    out = p.generate(t0, t0 + length, p.config({"seed": seed}), Context())
    assert verify(out.blocks, t0, t0 + length, out.constraints)["ok"]
    assert sum(b.duration for b in out.blocks) == pytest.approx(length, abs=0.01)
