"""Dask executor: chunks of studies per task, their sizes, and what a failing item costs."""

from __future__ import annotations

import math

import pytest

from app.batch import DaskExecutor
from app.batch import _executors as executors
from app.batch._executors import _ChunkSizer, run_chunk


def _square(x: int) -> int:
    return x * x


def _square_but_not_seven(x: int) -> int:
    if x == 7:
        raise ValueError("seven")
    return x * x


def test_chunk_sizes_start_single_then_follow_the_measured_cost(monkeypatch):
    monkeypatch.setattr(executors, "DASK_CHUNK_SECONDS", 0.25)
    sizer = _ChunkSizer(workers=2, total=0)  # length unknown: only the cost bound
    assert [sizer.next_size() for _ in range(3)] == [1, 1, 1]
    sizer.observe(2, 0.1)  # 0.05 s per item -> 0.25 / 0.05 = 5 items
    assert sizer.next_size() == 5
    sizer.observe(1, 0.5)  # 0.6 s for 3 items: 0.2 s per item -> int(1.25) = 1
    assert sizer.next_size() == 1
    slow = _ChunkSizer(workers=2, total=0)
    slow.observe(1, 4.0)  # a detected study: seconds each, never grouped
    assert slow.next_size() == 1


def test_chunks_shrink_towards_the_end_so_workers_finish_together(monkeypatch):
    monkeypatch.setattr(executors, "DASK_CHUNK_SECONDS", 0.25)
    sizer = _ChunkSizer(workers=2, total=100)
    sizer.observe(10, 0.01)  # cheap items: the cost bound would allow 250 per chunk
    sizes = []
    while sizer.remaining:
        sizes.append(sizer.next_size())
    # guided: ceil(remaining / 4) of what is left each time, by hand
    expected, left = [], 100
    while left:
        expected.append(math.ceil(left / 4))
        left -= expected[-1]
    assert sizes == expected
    assert sizes[:4] == [25, 19, 14, 11] and sizes[-3:] == [1, 1, 1]
    assert sum(sizes) == 100


def test_run_chunk_keeps_order_and_a_raising_item_costs_only_itself():
    outputs, seconds = run_chunk(_square_but_not_seven, [3, 7, 5])
    assert outputs[0] == (9, None) and outputs[2] == (25, None)
    assert outputs[1] == (None, "worker: the task failed on the cluster (ValueError)")
    assert seconds >= 0.0


@pytest.fixture(scope="module")
def thread_cluster():
    with DaskExecutor("local", 2, processes=False) as dask:
        yield dask


def test_dask_sends_cheap_items_in_fewer_tasks_and_yields_every_result(thread_cluster):
    submitted: list[int] = []
    client = thread_cluster._client
    real_submit = client.submit

    def counting_submit(fn, *args, **kwargs):
        submitted.append(len(args[1]))
        return real_submit(fn, *args, **kwargs)

    client.submit = counting_submit
    try:
        results = list(thread_cluster.imap_unordered(_square, range(200)))
    finally:
        del client.submit
    assert sorted(results) == [(i, i * i, None) for i in range(200)]
    assert sum(submitted) == 200
    assert len(submitted) < 100  # one task per item would be 200
    assert submitted[:4] == [1, 1, 1, 1]  # the cost is unknown until a chunk is back


def test_dask_reports_a_raising_item_and_completes_the_others(thread_cluster):
    results = sorted(thread_cluster.imap_unordered(_square_but_not_seven, list(range(12))))
    assert [r[0] for r in results] == list(range(12))
    assert results[7] == (7, None, "worker: the task failed on the cluster (ValueError)")
    assert [r[1] for r in results if r[0] != 7] == [i * i for i in range(12) if i != 7]


def test_local_cluster_scheduler_hands_every_task_to_a_worker(thread_cluster):
    saturation = thread_cluster._client.run_on_scheduler(
        lambda dask_scheduler: dask_scheduler.WORKER_SATURATION
    )
    assert saturation == math.inf


def test_local_cluster_workers_keep_glibc_malloc_defaults_and_one_thread(monkeypatch):
    # Dask's default MALLOC_TRIM_THRESHOLD_ (65536) makes every large array a fresh mmap
    # (measured +15 % CPU per study); an earlier stock cluster in this process may have
    # left it in the environment, which the workers would inherit
    import os

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with DaskExecutor("local", 1) as dask:
        env = dask._client.run(lambda: {k: os.environ.get(k) for k in
                                        ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")})
        modules = dask._client.run(lambda: sorted(
            name for name in __import__("sys").modules if name in ("measure", "app.session")))
    assert list(env.values()) == [{"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}]
    assert list(modules.values()) == [["app.session", "measure"]]  # imported at start-up
