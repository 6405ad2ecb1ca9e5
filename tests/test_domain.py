"""The run state machine and the policies, as pure rules."""

import random

import pytest

from gnomon.domain import (
    Principal,
    RetryPolicy,
    Role,
    RunChange,
    can_transition,
    cancel,
    clip_output,
    merge_params,
    settle,
    should_retry,
    validate_executor,
)
from gnomon.vocabulary import FINAL_STATES, TRANSITIONS, RunState

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


# --- how an attempt ends: settle() decides between final and another attempt ----------------


def _run(attempt: int = 1, cancel: bool = False) -> dict:
    return {"id": "r", "attempt": attempt, "cancel_requested": cancel}


def test_settle_final_when_no_attempts_left() -> None:
    change = settle(_run(), RunState.failed, RetryPolicy(), 100.0, exit_code=2)
    assert change.path == (RunState.failed,) and change.values["finished_at"] == 100.0
    assert change.values["exit_code"] == 2 and change.attempt == 1
    assert change.logged("failed", 1) == [("failed", 1)]


def test_settle_retry_requeues_with_backoff_and_logs_both_steps() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_s=10, jitter=0)
    change = settle(_run(attempt=1), RunState.lost, policy, 100.0)
    assert change.path == (RunState.lost, RunState.queued) and change.values["attempt"] == 2
    assert change.values["not_before"] == 110.0 and change.values["worker_id"] is None
    assert change.logged("queued", 2) == [("lost", 1), ("queued", 2)]
    assert set(change.from_states) == {RunState.claimed, RunState.running}


def test_settle_no_retry_for_cancel_or_a_cancel_request() -> None:
    policy = RetryPolicy(max_attempts=5)
    assert settle(_run(), RunState.cancelled, policy, 1.0).path == (RunState.cancelled,)
    assert settle(_run(cancel=True), RunState.lost, policy, 1.0).path == (RunState.lost,)


def test_settle_retries_only_on_listed_outcomes() -> None:
    policy = RetryPolicy(max_attempts=5, on=["lost"])
    assert settle(_run(), RunState.failed, policy, 1.0).path[-1] == RunState.failed
    assert settle(_run(), RunState.lost, policy, 1.0).path[-1] == RunState.queued


# --- run changes follow the state machine ----------------------------------------------------


def test_a_change_starts_where_the_machine_lets_it() -> None:
    start = RunChange("r", 1.0, (RunState.running,), attempt=3)
    assert start.from_states == (RunState.claimed,)
    cancel_waiting = cancel("r", 1.0, "by me")
    assert set(cancel_waiting.from_states) == {RunState.pending, RunState.queued}
    with pytest.raises(ValueError, match="cannot go from succeeded to queued"):
        RunChange("r", 1.0, (RunState.succeeded, RunState.queued))
    with pytest.raises(ValueError, match="cannot be entered"):
        RunChange("r", 1.0, (RunState.running,), within=(RunState.queued,))
    with pytest.raises(ValueError, match="which states"):
        RunChange("r", 1.0, values={"status": "x"})


def test_a_start_and_an_end_written_as_one() -> None:
    start = RunChange("r", 1.0, (RunState.running,), {"started_at": 1.0}, 2)
    note = RunChange("r", 1.5, (), {"external_id": "42"}, 2, within=(RunState.claimed,))
    end = settle({"id": "r", "attempt": 2}, RunState.failed, RetryPolicy(max_attempts=3), 2.0)
    both = start.then(note).then(end)
    assert both.path == (RunState.running, RunState.failed, RunState.queued)
    assert both.from_states == (RunState.claimed,) and both.at == 2.0
    assert both.values["started_at"] == 1.0 and both.values["external_id"] == "42"
    assert both.logged("queued", 3) == [("running", 2), ("failed", 2), ("queued", 3)]
    noted_then_ended = note.then(end)
    assert noted_then_ended.from_states == (RunState.claimed,)
