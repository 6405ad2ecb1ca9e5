"""How an attempt ends: settle() decides between final and another attempt."""

from gnomon.domain import RetryPolicy, RunState
from gnomon.service.runs import settle


def run(attempt: int = 1, cancel: bool = False) -> dict:
    return {"id": "r", "attempt": attempt, "cancel_requested": cancel}


def test_final_when_no_attempts_left() -> None:
    change = settle(run(), RunState.failed, RetryPolicy(), 100.0, exit_code=2)
    assert change["state"] == "failed" and change["finished_at"] == 100.0
    assert change["exit_code"] == 2 and "_states" not in change


def test_retry_requeues_with_backoff_and_logs_both_steps() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_s=10, jitter=0)
    change = settle(run(attempt=1), RunState.lost, policy, 100.0)
    assert change["state"] == "queued" and change["attempt"] == 2
    assert change["not_before"] == 110.0 and change["worker_id"] is None
    assert change["_states"] == [("lost", 1), ("queued", 2)]


def test_no_retry_for_cancel_or_a_cancel_request() -> None:
    policy = RetryPolicy(max_attempts=5)
    assert settle(run(), RunState.cancelled, policy, 1.0)["state"] == "cancelled"
    assert settle(run(cancel=True), RunState.lost, policy, 1.0)["state"] == "lost"


def test_retry_only_on_listed_outcomes() -> None:
    policy = RetryPolicy(max_attempts=5, on=["lost"])
    assert settle(run(), RunState.failed, policy, 1.0)["state"] == "failed"
    assert settle(run(), RunState.lost, policy, 1.0)["state"] == "queued"
