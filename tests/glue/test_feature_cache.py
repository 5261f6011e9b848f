"""The single-flight feature cache shared by RIFE and EDVR (vssr/glue/feature_cache.py)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from vssr.glue.feature_cache import FeatureCache

THREADS = 16


def test_lru_order_and_bound() -> None:
    cache = FeatureCache[int, np.ndarray](capacity=2)
    calls: list[int] = []

    def make(i: int) -> np.ndarray:
        calls.append(i)
        return np.full(1, i)

    for i in (0, 1, 0, 2, 1, 0):
        assert cache.get(i, lambda i=i: make(i))[0] == i
        assert len(cache) <= 2
    assert calls == [0, 1, 2, 1, 0]  # capacity 2: the least recently used entry is evicted


def test_sixteen_threads_compute_each_key_once() -> None:
    """16 threads ask for the same 8 keys (capacity 8: all stay resident), each many times, all
    released at once by a barrier; the slow compute makes the askers meet while it runs."""
    cache = FeatureCache[int, int](capacity=8)
    computed: Counter[int] = Counter()
    count_lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def compute(key: int) -> int:
        with count_lock:
            computed[key] += 1
        time.sleep(0.01)
        return key * 10

    def worker(seed: int) -> list[int]:
        barrier.wait()
        keys = [(seed + i) % 8 for i in range(40)]
        return [cache.get(k, lambda k=k: compute(k)) - 10 * k for k in keys]

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(worker, range(THREADS)))
    assert all(r == [0] * 40 for r in results)  # every asker got its key's value
    assert computed == Counter({k: 1 for k in range(8)})
    assert len(cache) == 8


def test_bound_respected_under_threads() -> None:
    cache = FeatureCache[int, int](capacity=3)
    sizes: list[int] = []

    def worker(seed: int) -> None:
        for i in range(200):
            key = (seed * 7 + i) % 11
            assert cache.get(key, lambda key=key: key + 1) == key + 1
            sizes.append(len(cache))

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(worker, range(THREADS)))
    assert max(sizes) <= 3 and len(cache) == 3


def test_error_reaches_every_waiter_and_is_not_cached() -> None:
    cache = FeatureCache[str, int](capacity=4)
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def failing() -> int:
        calls.append("fail")
        started.set()
        release.wait(5)
        raise RuntimeError("encoder failed")

    def ask() -> BaseException | int:
        try:
            return cache.get("frame", failing)
        except RuntimeError as err:
            return err

    with ThreadPoolExecutor(THREADS) as pool:
        owner = pool.submit(ask)
        assert started.wait(5)
        waiters = [pool.submit(ask) for _ in range(THREADS - 1)]
        time.sleep(0.05)  # the waiters are blocked on the one computation
        release.set()
        outcomes = [owner.result(5), *(w.result(5) for w in waiters)]
    assert calls == ["fail"]  # one computation, its error handed to all 16 askers
    assert all(isinstance(o, RuntimeError) and str(o) == "encoder failed" for o in outcomes)
    assert len(cache) == 0
    assert cache.get("frame", lambda: 7) == 7  # not cached: the next asker computes again


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        FeatureCache[int, int](capacity=0)
