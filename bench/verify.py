"""The verified-token cache: what checking a repeated bearer token costs on every API call.

    .venv/bin/python bench/verify.py                 # --n 200000 --repeat 5

A real ``TokenService`` over a SQLite store (key ring loaded, one token issued and verified once,
so it is cached), then ``verify()`` called ``n`` times, best of ``repeat``. Baseline in the same
run: the least a cache can do (an ``OrderedDict`` lookup, ``move_to_end`` and an expiry compare).
Run it from another checkout's ``bench/`` to measure that checkout's code (``common`` puts the
checkout first on ``sys.path``); docs/benchmarks.md compares the cost with what one ``GET /auth``
costs in ``bench/api.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

from common import ROOT

from mxproxy.auth.keyring import KeyRing
from mxproxy.auth.tokens import TokenService
from mxproxy.config import JWTConfig
from mxproxy.store import create_store


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = create_store(str(Path(folder) / "bench.db"), "bench-key")
        await store.open()
        service = TokenService(KeyRing(store, JWTConfig()), JWTConfig())
        await service.keyring.load()
        token = (await service.issue("bench")).access_token
        claims = await service.verify(token)

        cache: OrderedDict[str, object] = OrderedDict({token: claims})
        best_base = best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            for _ in range(args.n):
                hit = cache.get(token)
                if hit is not None and time.time() < claims.exp:
                    cache.move_to_end(token)
            best_base = min(best_base, time.perf_counter() - start)
            start = time.perf_counter()
            for _ in range(args.n):
                await service.verify(token)
            best = min(best, time.perf_counter() - start)
        await store.close()
    base_ns, ns = best_base / args.n * 1e9, best / args.n * 1e9
    print(f"code: {ROOT}")
    print(f"baseline (dict lookup + expiry check)  {base_ns:7.0f} ns/call")
    print(f"TokenService.verify, cached token      {ns:7.0f} ns/call   {ns / base_ns:.2f} x baseline")


if __name__ == "__main__":
    asyncio.run(main())
