"""A CPU-time sampling profiler for a whole process (no py-spy on this machine; cProfile charges
the time a coroutine spends suspended to it, so it misleads on asyncio code).

    python bench/sampler.py OUT -m mxproxy serve --config x.toml

Every 1 ms of CPU time (``ITIMER_PROF``) the running Python stack is sampled; at exit (SIGTERM
included) OUT gets the functions by inclusive and by own share of the samples.
"""

from __future__ import annotations

import atexit
import collections
import runpy
import signal
import sys
from types import FrameType

INTERVAL = 0.001

own: collections.Counter[str] = collections.Counter()
inclusive: collections.Counter[str] = collections.Counter()
total = 0


def _name(frame: FrameType) -> str:
    code = frame.f_code
    return f"{code.co_filename.rpartition('site-packages/')[2].rpartition('/work/wt/')[2]}:{code.co_name}"


def _sample(signum: int, frame: FrameType | None) -> None:
    global total
    if frame is None:
        return
    total += 1
    own[_name(frame)] += 1
    seen = set()
    while frame is not None:
        name = _name(frame)
        if name not in seen:
            seen.add(name)
            inclusive[name] += 1
        frame = frame.f_back


def _write(path: str) -> None:
    signal.setitimer(signal.ITIMER_PROF, 0)
    with open(path, "w") as out:
        out.write(f"{total} samples of {INTERVAL * 1000:.0f} ms CPU\n\n== inclusive\n")
        for name, count in inclusive.most_common(80):
            out.write(f"{100 * count / max(1, total):6.1f}%  {name}\n")
        out.write("\n== own\n")
        for name, count in own.most_common(60):
            out.write(f"{100 * count / max(1, total):6.1f}%  {name}\n")


def main() -> None:
    path = sys.argv[1]
    if sys.argv[2] != "-m":
        raise SystemExit("usage: sampler.py OUT -m module args...")
    module = sys.argv[3]
    sys.argv = [module, *sys.argv[4:]]
    atexit.register(_write, path)
    signal.signal(signal.SIGPROF, _sample)
    signal.setitimer(signal.ITIMER_PROF, INTERVAL, INTERVAL)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
