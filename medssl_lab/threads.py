"""Torch threads that fit the CPUs this process really has.

torch sizes its thread pool by the cores the machine shows. On Binder, JupyterHub or Colab the CPU is limited by a
cgroup quota (e.g. 1-2 CPUs on a 64-core node) and on a shared laptop another busy process holds a core; torch's
threads then wait for each other and throughput collapses (``benchmarks/threads.py`` on 2 cores beside one busy
process: 0.32 of the speed alone with torch's default of 2 threads, 0.59 with this module's choice of one).
:func:`configure_threads` picks the count from

1. ``MEDSSL_THREADS``, else ``OMP_NUM_THREADS`` (a whole number) when set: the user knows best;
2. the cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``) and the affinity mask;
3. without a quota, the CPUs of the affinity mask that other processes keep busy are left to them.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

THREADS_ENV = "MEDSSL_THREADS"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read_quota(folder: Path) -> float | None:
    """The quota one cgroup folder sets: v2 ``cpu.max``, else v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``."""
    try:
        if (folder / "cpu.max").is_file():
            quota, period = (folder / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota_us = int((folder / "cpu.cfs_quota_us").read_text())
        period_us = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


def _own_cgroup(proc_cgroup: str) -> tuple[str, str]:
    """(hierarchy, path) of this process's CPU cgroup from ``/proc/self/cgroup``: ``("", path)`` for v2,
    ``("cpu", path)`` (or the folder the cpu controller shares) for v1."""
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            return controllers, path
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            return "", line[3:]
    return "", "/"


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, proc_cgroup: str | None = None) -> float | None:
    """CPUs this process's cgroup may use (the smallest quota on its path to the root), or None without a quota."""
    if proc_cgroup is None:
        try:
            proc_cgroup = Path("/proc/self/cgroup").read_text()
        except OSError:
            proc_cgroup = ""
    hierarchy, path = _own_cgroup(proc_cgroup)
    base = root
    if hierarchy:  # v1: the cpu controller's own mount, e.g. /sys/fs/cgroup/cpu or /sys/fs/cgroup/cpu,cpuacct
        base = next((root / name for name in (hierarchy, "cpu") if (root / name).is_dir()), root)
    folder = base / path.strip("/") if path.strip("/") else base
    quotas = []
    while True:
        quota = _read_quota(folder)
        if quota is not None:
            quotas.append(quota)
        if folder == base or base not in folder.parents:
            break
        folder = folder.parent
    return min(quotas) if quotas else None


def affinity_cpus() -> list[int]:
    """The CPUs this process may run on (all of them where the platform cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def busy_cpus_elsewhere(cpus: list[int], interval: float = 0.3) -> float:
    """How many of ``cpus`` other processes keep busy, measured over ``interval`` seconds."""
    import psutil

    me = psutil.Process()
    me.cpu_percent(None)
    psutil.cpu_percent(None, percpu=True)
    time.sleep(interval)
    per_cpu = psutil.cpu_percent(None, percpu=True)
    busy = sum(per_cpu[i] for i in cpus if i < len(per_cpu)) / 100.0
    return max(0.0, busy - me.cpu_percent(None) / 100.0)


def choose_threads(root: Path = CGROUP_ROOT, measure_others: bool = True) -> tuple[int, str]:
    """The thread count for this process and a sentence saying why."""
    for name in (THREADS_ENV, "OMP_NUM_THREADS"):  # a count the user set wins; OMP_NUM_THREADS is the usual knob
        setting = os.environ.get(name, "").strip()
        if setting:
            if not setting.isdigit() or int(setting) < 1:
                raise ValueError(f"{name}={setting!r}: give a whole number of threads >= 1, or unset it")
            return int(setting), f"{setting} from {name}"
    cpus = affinity_cpus()
    share = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))  # processes torchrun started on this machine
    per = f" shared by {share} processes" if share > 1 else ""
    quota = cgroup_cpu_quota(root)
    if quota is not None and quota < len(cpus):
        n = max(1, math.floor(quota / share))
        return n, f"{n}: the cgroup CPU quota is {quota:g} CPUs{per} (the machine shows {os.cpu_count()})"
    others = busy_cpus_elsewhere(cpus) if measure_others and len(cpus) > 1 and share == 1 else 0.0
    n = max(1, (len(cpus) - round(others)) // share)
    busy = f", {others:.1f} kept busy by other processes" if others >= 0.5 else ""
    return n, f"{n}: {len(cpus)} CPUs available{per}{busy}"


def configure_threads(root: Path = CGROUP_ROOT, measure_others: bool = True) -> str:
    """Size torch's thread pools with :func:`choose_threads`; call before the first torch work. Returns why."""
    import torch

    n, why = choose_threads(root, measure_others)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # only settable before any parallel work has started; the intra-op pool is what matters
        pass
    return f"torch threads: {why}"
