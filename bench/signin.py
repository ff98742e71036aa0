"""Refusing an unknown sign-in name costs what refusing a known one does (no user enumeration).

    .venv/bin/python bench/signin.py                 # --n 40

The static provisioner with one user whose password is a scrypt hash at the shipped cost
(N=2^14, r=8, p=1, what ``mxproxy hash-password`` writes). Timed in turn, in the same run: a known
name with a wrong password, an unknown name, and the right password (the baseline: the work
every successful sign-in does). Figures: median and p90 per refusal, and the unknown/known ratio
(target 0.9-1.1; it was ~0.02 before unknown names were hashed against a dummy).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from common import ROOT  # noqa: F401  (puts the repo on sys.path)

from mxproxy.provisioning import ProvisioningError, StaticProvisioner, hash_password, parse_static

KNOWN, PASSWORD = "known@example.org", "right-password"


async def timed(prov: StaticProvisioner, username: str, password: str) -> float:
    start = time.perf_counter()
    try:
        await prov.by_password(username, password)
    except ProvisioningError:
        pass
    return time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40, help="tries of each kind (interleaved)")
    args = parser.parse_args()
    static = parse_static({"host": "127.0.0.1:7778",
                           "users": {KNOWN: {"password": hash_password(PASSWORD), "mxPassword": "x"}}})
    prov = StaticProvisioner(static)
    kinds = {"right password": (KNOWN, PASSWORD), "known, wrong password": (KNOWN, "wrong"),
             "unknown name": ("nobody@example.org", "wrong")}
    times: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(args.n):
        for name, (user, pw) in kinds.items():
            times[name].append(await timed(prov, user, pw))
    for name, values in times.items():
        values.sort()
        print(f"{name:<24} median {statistics.median(values) * 1000:7.2f} ms   "
              f"p90 {values[int(len(values) * 0.9)] * 1000:7.2f} ms")
    ratio = statistics.median(times["unknown name"]) / statistics.median(times["known, wrong password"])
    print(f"unknown / known refusal: {ratio:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
