"""Where ``--processes N`` puts its client processes: a CPU each, away from the mock's."""

from __future__ import annotations

import pytest

from harness.load.config import RunConfig
from harness.load.payloads import RequestSpec
from harness.load.placement import place_processes
from harness.load.schedule import Bounds, ClosedLoop


def test_two_processes_on_four_cpus_keep_off_the_mock() -> None:
    placement = place_processes(2, [0, 1, 2, 3], mock=[0])
    assert placement.cpus == ((1,), (2,))
    assert placement.warning is None
    assert placement.describe() == "client processes on CPUs 1, 2 (mock on 0)"


def test_processes_take_distinct_cpus_the_mocks_last() -> None:
    placement = place_processes(2, [0, 1], mock=[0])
    assert placement.cpus == ((1,), (0,))  # distinct CPUs: one beside the mock
    assert placement.warning is not None
    assert "embedded mock" in placement.warning


def test_fewer_cpus_than_processes_share_and_warn() -> None:  # as under `taskset -c 1`
    placement = place_processes(2, [1])
    assert placement.cpus == ((1,), (1,))
    assert placement.warning is not None
    assert "only 1 CPU(s) allowed" in placement.warning
    assert "--processes 1" in placement.warning


def test_sharing_is_round_robin_over_the_free_cpus_first() -> None:
    placement = place_processes(5, [4, 2, 3], mock=[2])
    assert placement.cpus == ((3,), (4,), (2,), (3,), (4,))
    assert placement.allowed == (2, 3, 4)
    assert placement.warning is not None


def test_the_client_counts_the_cpus_it_has_to_itself() -> None:
    assert place_processes(1, [0, 1], mock=[0]).client_cpus == 1  # no use for --processes 2
    assert place_processes(1, [0, 1, 2, 3], mock=[0]).client_cpus == 3
    assert place_processes(1, [2], mock=[2]).client_cpus == 1
    assert place_processes(1, []).client_cpus == 0


def test_one_process_may_use_every_cpu_but_the_mocks() -> None:
    assert place_processes(1, [0, 1, 2], mock=[0]).cpus == ((1, 2),)
    alone = place_processes(1, [3], mock=[3])
    assert alone.cpus == ((3,),)
    assert alone.warning is not None
    assert "shares its CPU" in alone.warning


def test_without_affinity_nothing_is_pinned() -> None:
    placement = place_processes(3, [])
    assert placement.cpus == ((), (), ())
    assert placement.warning is None
    assert "not pinned" in placement.describe()


def test_count_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        place_processes(0, [0])


def test_the_summary_config_carries_the_placement() -> None:
    config = RunConfig(
        spec=RequestSpec(url="http://127.0.0.1:9/v1/chat/completions"),
        profile=ClosedLoop(concurrency=4),
        bounds=Bounds(requests=4),
        processes=2,
        cpus=(0, 1, 2),
        mock_cpus=(0,),
    )
    assert config.redacted()["placement"] == {
        "cpus": [[1], [2]],
        "allowed": [0, 1, 2],
        "mock": [0],
        "warning": None,
    }
