"""Times are shown as RFC 3339 UTC to the microsecond, exactly as datetime would."""

import random
from datetime import UTC, datetime

from gnomon.api.present import iso


def test_iso_matches_datetime_over_the_whole_range() -> None:
    rng = random.Random(11)
    samples = [0.0, 1.5, -62135596800.0, 253402300799.5, 1795327274.9999996]
    samples += [rng.uniform(-6.2e10, 2.5e11) for _ in range(20000)]
    for t in samples:
        expected = datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")
        assert iso(t) == expected.replace("+00:00", "Z"), t
    assert iso(None) is None
