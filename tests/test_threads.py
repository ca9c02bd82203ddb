"""Thread counts that fit the CPUs a process really has: cgroup quotas (v1, v2), affinity, busy neighbours."""

from __future__ import annotations

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
