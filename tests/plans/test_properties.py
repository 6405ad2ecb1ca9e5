"""Any plan a policy makes passes the verifier, for random windows and configs."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnomon.plans import policy
from gnomon.plans.policy import Context
from gnomon.plans.verify import verify
from tests.plans.helpers import SHARED_SCHEDULE, ts

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


def check(t0: float, t1: float, config: dict) -> None:
    p = policy.get("basic")
    out = p.generate(t0, t1, p.config(config), Context())
    report = verify(out.blocks, t0, t1, out.constraints)
    assert report["ok"], report["problems"]
    assert [b.t0 for b in out.blocks] == sorted(b.t0 for b in out.blocks)


@SETTINGS
@given(
    start=st.floats(0, 8 * 86400, allow_nan=False),
    length=st.floats(600, 2 * 86400, allow_nan=False),
    config=configs,
)
def test_basic_on_the_sample_always_verifies(start: float, length: float, config: dict) -> None:
    check(SAMPLE_START + start, SAMPLE_START + start + length, config)


@SETTINGS
@given(
    start=st.floats(0, 364 * 86400, allow_nan=False),
    length=st.floats(600, 86400, allow_nan=False),
    config=configs,
)
def test_basic_on_the_real_schedule_always_verifies(
    start: float, length: float, config: dict
) -> None:
    if not SHARED_SCHEDULE.exists():
        return
    check(
        YEAR_START + start,
        YEAR_START + start + length,
        {**config, "master_schedule": str(SHARED_SCHEDULE)},
    )


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
    assert sum(b.duration for b in out.blocks) == __import__("pytest").approx(length, abs=0.01)
