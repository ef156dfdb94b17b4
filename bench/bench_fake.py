"""Plan + bring-up + teardown of a random N-container DAG on the FakeBackend.

Targets (issue #2): 1,000 containers under 0.25 s, 10,000 under 3 s. Run: ``nox -s bench``
or ``python bench/bench_fake.py [--sizes 1000 10000] [--repeat 5]``. Reports the median.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time

import anyio

import asyncpod
from asyncpod.backends import FakeBackend

TARGETS = {1000: 0.25, 10000: 3.0}


def random_dag_pod(n: int, seed: int = 0) -> asyncpod.Pod:
    """n app containers; each depends on up to 3 random earlier ones (started)."""
    rng = random.Random(seed)
    containers = []
    for i in range(n):
        deps = sorted({f"c{rng.randrange(i)}" for _ in range(rng.randint(0, 3))}) if i else []
        containers.append(asyncpod.Container(name=f"c{i}", image="img", depends_on=deps))
    init = [asyncpod.Container(name="init", image="img", command=["true"])]
    return asyncpod.Pod(name="bench", init_containers=init, containers=containers)


async def one_run(pod: asyncpod.Pod) -> float:
    async with FakeBackend() as fake:
        t0 = time.perf_counter()
        async with asyncpod.open_pod(pod, backend=fake):  # plans, brings up, tears down
            pass
        elapsed = time.perf_counter() - t0
        assert fake.objects() == []
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backends", nargs="+", default=["asyncio", "trio"])
    args = parser.parse_args()
    failed = False
    for n in args.sizes:
        pod = random_dag_pod(n)
        # The pod description is long-lived data, as in a service: keep the cyclic GC
        # from re-scanning it on every collection (what a long-running process gets
        # from gc.freeze() after start-up).
        gc.collect()
        gc.freeze()
        for backend in args.backends:
            times = [anyio.run(one_run, pod, backend=backend) for _ in range(args.repeat)]
            median = statistics.median(times)
            target = TARGETS.get(n)
            verdict = "" if target is None else ("ok" if median < target else "SLOW")
            failed |= verdict == "SLOW"
            print(
                f"{n:>6} containers  {backend:<7} median {median:7.3f} s  "
                f"(min {min(times):.3f}, target {target} s) {verdict}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
