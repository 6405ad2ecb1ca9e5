"""Write the bundled sample master schedule (TOAST ground-schedule format).

    python scripts/make_sample_schedule.py > src/gnomon/plans/data/sample_schedule.txt

A week of made-up constant-elevation scans for a telescope in the Atacama: rising fields in
the east, setting fields in the west, 30-60 min each, split into sub-scans like TOAST does.
The sun and moon columns are real (PyEphem); the fields are not from any real survey plan.
Deterministic: the same file every time.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from gnomon.plans.sky import Site, ephem_altaz

SITE = Site("ATACAMA", -22.958, -67.786, 5200.0)
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 7
MJD_UNIX = 40587.0

HEADER = (
    "#Site            Telescope        Latitude [deg] Longitude [deg]   Elevation [m]\n"
    f" {SITE.name:<15} SAT              {SITE.lat:>14.3f} {SITE.lon:>15.3f} "
    f"{SITE.elevation:>15.1f}\n"
    "#      Start time UTC        Stop time UTC      Start MJD       Stop MJD Rotation "
    "Patch name                            Az min   Az max       El   R/S  Sun el1  Sun az1  "
    "Sun el2  Sun az2 Moon el1 Moon az1 Moon el2 Moon az2 Phase  Pass Sub\n"
)


def row(
    a: datetime,
    b: datetime,
    patch: str,
    az0: float,
    az1: float,
    el: float,
    rs: str,
    n_pass: int,
    sub: int,
) -> str:
    ta, tb = a.timestamp(), b.timestamp()
    sun1, sun2 = ephem_altaz("sun", SITE, ta), ephem_altaz("sun", SITE, tb)
    moon1, moon2 = ephem_altaz("moon", SITE, ta), ephem_altaz("moon", SITE, tb)
    return (
        f" {a:%Y-%m-%d %H:%M:%S}  {b:%Y-%m-%d %H:%M:%S}  "
        f"{ta / 86400 + MJD_UNIX:14.6f} {tb / 86400 + MJD_UNIX:14.6f} {270.0:8.2f} "
        f"{patch:<35} {az0:8.2f} {az1:8.2f} {el:8.2f} {rs:<3} "
        f"{sun1[0]:8.2f} {sun1[1]:8.2f} {sun2[0]:8.2f} {sun2[1]:8.2f} "
        f"{moon1[0]:8.2f} {moon1[1]:8.2f} {moon2[0]:8.2f} {moon2[1]:8.2f} "
        f"{0.5:5.2f} {n_pass:5d} {sub:3d}\n"
    )


def main() -> None:
    rng = random.Random(2026)
    patches = [f"DEC-045..-025_RA+{ra:07.3f}..+{ra + 12.0:07.3f}" for ra in range(0, 360, 12)]
    out = [HEADER]
    t = START + timedelta(minutes=17)
    end = START + timedelta(days=DAYS)
    n = 0
    while t < end:
        rising = n % 2 == 0
        patch = patches[n % len(patches)]
        el = 50.0 if rng.random() < 0.5 else 60.0
        az0 = rng.uniform(100, 150) if rising else rng.uniform(200, 250)
        throw = rng.uniform(20, 45)
        length = timedelta(minutes=rng.randrange(30, 61))
        subs = 2 if length >= timedelta(minutes=45) else 1
        for sub in range(subs):
            a = t + length * sub / subs
            b = t + length * (sub + 1) / subs
            a, b = a.replace(microsecond=0), b.replace(microsecond=0)
            drift = rng.uniform(-0.8, 0.8)
            out.append(
                row(
                    a,
                    b,
                    patch,
                    az0 + drift,
                    az0 + throw + drift,
                    el,
                    "R" if rising else "S",
                    n // len(patches),
                    sub,
                )
            )
        t = (t + length + timedelta(minutes=rng.randrange(3, 25))).replace(second=0)
        n += 1
    print("".join(out), end="")


if __name__ == "__main__":
    main()
