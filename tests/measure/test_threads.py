"""measure._threads: one thread inside, the previous settings restored after."""

from __future__ import annotations

import cv2
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from measure._threads import single_threaded, single_threaded_call


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info()]


@pytest.fixture
def two_threads():
    """OpenCV and the BLAS pools at 2 threads during the test; the caller's settings after."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        with threadpool_limits(limits=2):
            yield
    finally:
        cv2.setNumThreads(previous)


def test_single_threaded_limits_blas_and_opencv_and_restores_them(two_threads):
    before = _blas_threads()
    assert cv2.getNumThreads() == 2
    with single_threaded():
        assert cv2.getNumThreads() == 1
        assert all(n == 1 for n in _blas_threads())
    assert cv2.getNumThreads() == 2
    assert _blas_threads() == before


def test_the_decorator_restores_the_settings_when_the_call_raises(two_threads):
    @single_threaded_call
    def fails():
        assert cv2.getNumThreads() == 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fails()
    assert cv2.getNumThreads() == 2


def test_overlapping_blocks_in_two_threads_restore_the_setting_of_the_first(two_threads):
    """Thread A enters, B enters, A leaves, B leaves: OpenCV ends at 2 threads, not at 1."""
    import threading

    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def a():
        with single_threaded():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b():
        a_in.wait(5)
        with single_threaded():
            b_in.set()
            a_out.wait(5)
            assert cv2.getNumThreads() == 1

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert cv2.getNumThreads() == 2
