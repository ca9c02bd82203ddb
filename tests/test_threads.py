"""Thread counts that fit the CPUs a process really has: cgroup quotas (v1, v2), affinity, busy neighbours."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from medssl_lab import threads
from medssl_lab.threads import THREADS_ENV, cgroup_cpu_quota, choose_threads, configure_threads


def test_cgroup_quota_v2_v1_and_none(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    (v2 / "pod").mkdir(parents=True)
    (v2 / "pod" / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(v2, "0::/pod\n") == pytest.approx(1.5)
    (v2 / "pod" / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(v2, "0::/pod\n") is None
    (v2 / "cpu.max").write_text("300000 100000\n")  # a parent's quota applies to its children too
    assert cgroup_cpu_quota(v2, "0::/pod\n") == pytest.approx(3.0)
    v1 = tmp_path / "v1" / "cpu,cpuacct" / "job"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    proc = "5:memory:/job\n4:cpu,cpuacct:/job\n"
    assert cgroup_cpu_quota(tmp_path / "v1", proc) == pytest.approx(1.0)
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(tmp_path / "v1", proc) is None
    assert cgroup_cpu_quota(tmp_path / "nothing", "") is None


def test_quota_below_the_visible_cpus_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "affinity_cpus", lambda: list(range(64)))
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda root: 1.5)
    n, why = choose_threads(tmp_path)
    assert n == 1 and "quota is 1.5 CPUs" in why


def test_busy_neighbours_are_left_their_cpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "affinity_cpus", lambda: [0, 1])
    monkeypatch.setattr(threads, "busy_cpus_elsewhere", lambda cpus: 0.9)
    assert choose_threads(tmp_path) == (1, "1: 2 CPUs available, 0.9 kept busy by other processes")
    monkeypatch.setattr(threads, "busy_cpus_elsewhere", lambda cpus: 0.1)
    assert choose_threads(tmp_path)[0] == 2
    assert choose_threads(tmp_path, measure_others=False)[0] == 2


def test_the_setting_overrides_and_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.setenv(THREADS_ENV, "3")
    try:
        assert configure_threads(tmp_path) == f"torch threads: 3 from {THREADS_ENV}"
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(ValueError, match="MEDSSL_THREADS='many'"):
        choose_threads(tmp_path)


def test_busy_cpus_elsewhere_measures_a_fraction_of_the_cpus() -> None:
    others = threads.busy_cpus_elsewhere(threads.affinity_cpus(), interval=0.05)
    assert 0.0 <= others <= len(threads.affinity_cpus())


def test_processes_started_by_torchrun_share_the_cpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(threads, "affinity_cpus", lambda: list(range(8)))
    assert choose_threads(tmp_path) == (4, "4: 8 CPUs available shared by 2 processes")
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda root: 2.0)
    assert choose_threads(tmp_path)[0] == 1


def test_omp_num_threads_counts_as_the_users_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert choose_threads(tmp_path) == (1, "1 from OMP_NUM_THREADS")


class FakeMachine:
    """Two CPUs whose busy time and this process's CPU time the test advances, a clock, and torch's count."""

    def __init__(self) -> None:
        self.now, self.busy, self.own, self.threads, self.reads = 0.0, 0.0, 0.0, 2, 0

    def run(self, seconds: float, ours: float, others: float) -> None:
        """``seconds`` pass with this process on ``ours`` CPUs and other processes on ``others``."""
        self.now += seconds
        self.own += ours * seconds
        self.busy += min(2.0, ours + others) * seconds

    def counters(self, cpus: list[int]) -> tuple[float, float]:
        self.reads += 1
        return self.busy, self.own

    def set_threads(self, n: int) -> None:
        self.threads = n

    def governor(self, every_s: float = 5.0) -> threads.ThreadGovernor:
        return threads.ThreadGovernor(
            every_s,
            Path("/nonexistent"),
            clock=lambda: self.now,
            counters=self.counters,
            get_threads=lambda: self.threads,
            set_threads=self.set_threads,
        )


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> FakeMachine:
    for name in (THREADS_ENV, "OMP_NUM_THREADS", threads.ADAPT_ENV, "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "affinity_cpus", lambda: [0, 1])
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda root: None)
    monkeypatch.setattr(threads, "_CHOSEN", 2)  # as if configure_threads had chosen 2 at the start
    return FakeMachine()


def test_the_governor_follows_work_that_starts_and_stops_beside_the_run(machine: FakeMachine) -> None:
    governor = machine.governor()
    machine.run(1.0, ours=2.0, others=0.0)
    assert not governor() and machine.reads == 1  # between re-checks: no reading at all
    machine.run(4.0, ours=2.0, others=0.0)
    assert not governor() and machine.threads == 2 and machine.reads == 2  # re-checked: the CPUs are still ours
    machine.run(5.0, ours=1.0, others=1.0)  # another process arrived: each gets one CPU
    assert governor() and machine.threads == 1
    assert governor.changes[-1][1:3] == (2, 1) and "1.0 kept busy by other processes" in governor.changes[-1][3]
    machine.run(5.0, ours=1.0, others=1.0)
    assert not governor() and machine.threads == 1  # it is still there
    machine.run(5.0, ours=1.0, others=0.0)  # it left
    assert governor() and machine.threads == 2 and len(governor.changes) == 2


def test_the_governor_never_changes_a_count_set_by_hand_or_by_the_users_setting(
    machine: FakeMachine, monkeypatch: pytest.MonkeyPatch
) -> None:
    governor = machine.governor()
    machine.threads = 1  # torch.set_num_threads(1) by hand, as the tests that compare runs bit for bit do
    machine.run(5.0, ours=1.0, others=0.0)  # a free CPU it would otherwise take
    assert not governor() and machine.threads == 1 and "set by hand" in governor.still
    governor.take_charge(1)  # configure_threads chose 1
    machine.run(5.0, ours=1.0, others=0.0)
    assert governor() and machine.threads == 2
    for name, value in ((threads.ADAPT_ENV, "0"), ("OMP_NUM_THREADS", "2"), ("LOCAL_WORLD_SIZE", "2")):
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            machine.run(5.0, ours=1.0, others=1.0)
            assert not governor() and machine.threads == 2 and governor.still, name
    machine.run(5.0, ours=1.0, others=1.0)
    assert governor() and machine.threads == 1  # the settings gone, it adapts again


def test_configure_threads_hands_the_count_to_the_process_governor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_GOVERNOR", None)
    monkeypatch.setattr(threads, "_CHOSEN", None)
    monkeypatch.setenv(THREADS_ENV, "1")
    monkeypatch.delenv(threads.ADAPT_ENV, raising=False)  # the test session keeps its threads; this test may not
    try:
        governor = threads.thread_governor()
        assert threads.thread_governor() is governor  # one per process
        configure_threads(tmp_path)
        assert governor.expected == 1 and threads._CHOSEN == 1
        assert governor.stands_still() == f"{THREADS_ENV} sets the count"
        assert not threads.adapt_threads()
    finally:
        torch.set_num_threads(before)


def test_cpu_counters_grow_with_this_processs_work() -> None:
    busy, own = threads.cpu_counters(threads.affinity_cpus())
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    busy_after, own_after = threads.cpu_counters(threads.affinity_cpus())
    assert own_after - own >= 0.15 and busy_after - busy >= 0.1  # the spin shows in both counters
    assert 1 <= threads.torch_default_threads(threads.affinity_cpus()) <= len(threads.affinity_cpus())
