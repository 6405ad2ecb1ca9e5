"""The run state machine and the policies, as pure rules."""

import random

import pytest

from gnomon.domain import (
    FINAL_STATES,
    TRANSITIONS,
    Principal,
    RetryPolicy,
    Role,
    RunState,
    can_transition,
    clip_output,
    merge_params,
    should_retry,
    validate_executor,
)

S = RunState


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (S.pending, S.queued),
        (S.queued, S.claimed),
        (S.claimed, S.running),
        (S.running, S.succeeded),
        (S.running, S.failed),
        (S.running, S.timed_out),
        (S.failed, S.queued),
        (S.timed_out, S.queued),
        (S.lost, S.queued),
        (S.claimed, S.lost),
        (S.running, S.lost),
        (S.pending, S.cancelled),
        (S.queued, S.cancelled),
        (S.claimed, S.cancelled),
        (S.running, S.cancelled),
    ],
)
def test_allowed_transitions(src: RunState, dst: RunState) -> None:
    assert can_transition(src, dst)


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (S.pending, S.running),
        (S.queued, S.running),
        (S.queued, S.succeeded),
        (S.succeeded, S.queued),
        (S.cancelled, S.queued),
        (S.queued, S.lost),
        (S.pending, S.lost),
        (S.succeeded, S.failed),
    ],
)
def test_refused_transitions(src: RunState, dst: RunState) -> None:
    assert not can_transition(src, dst)


def test_every_state_has_a_row_and_final_states_only_retry() -> None:
    assert set(TRANSITIONS) == set(RunState)
    for state in FINAL_STATES:
        assert TRANSITIONS[state] <= {S.queued}
    assert TRANSITIONS[S.succeeded] == frozenset()
    assert TRANSITIONS[S.cancelled] == frozenset()


def test_retry_decision() -> None:
    policy = RetryPolicy(max_attempts=3, on=["failed", "lost"])
    assert should_retry(policy, S.failed, 1)
    assert should_retry(policy, S.lost, 2)
    assert not should_retry(policy, S.failed, 3)
    assert not should_retry(policy, S.timed_out, 1)
    assert not should_retry(RetryPolicy(), S.failed, 1)  # default: one attempt


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_s=1, backoff_max_s=10, jitter=0)
    assert [policy.delay_before(n) for n in range(2, 8)] == [1, 2, 4, 8, 10, 10]
    jittered = RetryPolicy(max_attempts=10, backoff_s=4, jitter=0.25)
    rng = random.Random(7)
    delays = [jittered.delay_before(2, rng) for _ in range(500)]
    assert min(delays) >= 3 and max(delays) <= 5
    assert max(delays) - min(delays) > 1.5


def test_roles_rank_and_admin() -> None:
    dev = Principal(token_id="t", name="dev", roles={"a": Role.developer, "b": Role.viewer})
    assert dev.can("a", Role.viewer) and dev.can("a", Role.developer)
    assert not dev.can("a", Role.manager)
    assert dev.can("b", Role.viewer) and not dev.can("b", Role.developer)
    assert not dev.can("c", Role.viewer)
    assert dev.visible_spaces() == ["a", "b"]
    admin = Principal(token_id="t", name="root", admin=True)
    assert admin.can("anything", Role.manager) and admin.visible_spaces() is None


@pytest.mark.parametrize("value", ["local", "celery", "slurm", "site:saf", "site:a.b-c_1"])
def test_executor_names(value: str) -> None:
    assert validate_executor(value) == value


@pytest.mark.parametrize("value", ["", "site:", "site:-x", "ssh", "Local", "site:a b"])
def test_bad_executor_names(value: str) -> None:
    with pytest.raises(ValueError):
        validate_executor(value)


def test_params_and_output_helpers() -> None:
    assert merge_params({"a": 1, "b": 2}, {"b": 3}) == {"a": 1, "b": 3}
    assert merge_params(None, None) == {}
    assert clip_output(b"abcdef", 4) == b"cdef"
    assert clip_output(b"ab", 4) == b"ab"
