"""The Dask executor on a real cluster (a `dask scheduler` and `dask worker` processes): order, errors, stop,
the bounded window, salvage on an early exit, and a call whose workers keep dying."""

import itertools
import time

import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed (pip install 'privspeech[dask]')")

import stages  # noqa: E402
from dask_cluster import DaskCluster  # noqa: E402
from privspeech.executors import Done  # noqa: E402
from privspeech.executors_dask import MIN_WINDOW, Cluster, Dask  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    found = DaskCluster(tmp_path_factory.mktemp("dask"))
    yield found
    found.close()


def test_results_come_in_input_order_with_errors_at_their_turn(cluster):
    args = [(n, 0.3 if n == 0 else 0.01 * (n % 3)) for n in range(12)]
    results = Dask(Cluster(cluster.address)).map(stages.square_after, args,
                                                 prepare=lambda a: Done("skipped") if a[0] == 5 else a)
    got = [result for _, result in results]
    assert got == [n * n if n != 5 else "skipped" for n, _ in args]
    with pytest.raises(TypeError):
        list(Dask(Cluster(cluster.address)).map(stages.square_after, [(1, 0), ("x", 0), (2, 0)]))


def test_items_are_taken_a_bounded_window_ahead_and_stop_takes_no_more(cluster):
    taken = []

    def items():
        for n in itertools.count():
            taken.append(n)
            yield n, 0

    executor = Dask(Cluster(cluster.address))
    got = []
    for item, result in executor.map(stages.square_after, items()):
        got.append(result)
        if len(got) == 30:
            executor.stop()
        assert len(taken) <= len(got) + MIN_WINDOW
    assert got[:30] == [n * n for n in range(30)] and got == [n * n for n in range(len(got))]
    assert len(got) <= 30 + MIN_WINDOW


def test_an_early_exit_cancels_what_runs_and_salvages_what_finished(cluster):
    def items():  # the head runs on one worker, the next on the other, idle one
        yield from [(0, 3.0), (1, 0)]
        time.sleep(1.0)
        raise ValueError("unreadable input")

    salvaged = []
    started = time.monotonic()
    with pytest.raises(ValueError, match="unreadable input"):
        list(Dask(Cluster(cluster.address)).map(stages.square_after, items(),
                                                salvage=lambda item, result: salvaged.append((item, result))))
    assert salvaged == [((1, 0), 1)]
    assert time.monotonic() - started < 3.0  # the head, still running, was not waited for


def test_a_call_whose_worker_dies_is_lost(tmp_path):
    """With no failures allowed, the call that kills its worker is given up on at once (Dask's KilledWorker) and
    handed to `lost`; it is the last one, so no other call was on that worker when it died."""
    cluster = DaskCluster(tmp_path, env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"})
    try:
        args = [(1, 0), (2, 0), (3, 0), (-1, 0.5)]
        got = list(Dask(Cluster(cluster.address)).map(stages.square_after, args,
                                                      lost=lambda item, why: f"lost: {why}"))
    finally:
        cluster.close()
    assert got == [((1, 0), 1), ((2, 0), 4), ((3, 0), 9), ((-1, 0.5), "lost: 1 Dask worker died while running it")]
