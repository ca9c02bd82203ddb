"""Torch threads that fit the CPUs this process really has.

torch sizes its thread pool by the cores the machine shows. On Binder, JupyterHub or Colab the CPU is limited by a
cgroup quota (e.g. 1-2 CPUs on a 64-core node) and on a shared laptop another busy process holds a core; torch's
threads then wait for each other and throughput collapses (``benchmarks/threads.py`` on 2 cores beside one busy
process: 0.32 of the speed alone with torch's default of 2 threads, 0.59 with this module's choice of one).
:func:`configure_threads` picks the count from

1. ``MEDSSL_THREADS``, else ``OMP_NUM_THREADS`` (a whole number) when set: the user knows best;
2. the cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``) and the affinity mask;
3. without a quota, the CPUs of the affinity mask that other processes keep busy are left to them.

Chosen once, the count goes stale when other work starts beside a long run, or stops: a cpu-profile pretraining
that started alone ran about 6 times slower for as long as another torch process ran beside it (two threads on
each core wait for each other). Long loops therefore call :func:`adapt_threads` every step: a clock read, and
every few seconds (:data:`ADAPT_EVERY_S`) the same choice made again from how busy the CPUs were meanwhile
(:class:`ThreadGovernor`). A count the user set (``MEDSSL_THREADS``, ``OMP_NUM_THREADS``, or
``torch.set_num_threads`` by hand) is never changed; ``MEDSSL_ADAPT_THREADS=0`` keeps the first choice.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

THREADS_ENV = "MEDSSL_THREADS"
ADAPT_ENV = "MEDSSL_ADAPT_THREADS"
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: seconds between two re-checks of a long loop: long enough to average the CPUs' use, short enough to follow it
ADAPT_EVERY_S = 5.0


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


def user_setting() -> tuple[int, str] | None:
    """The thread count the user set (``MEDSSL_THREADS``, else ``OMP_NUM_THREADS``) and where from, or None."""
    for name in (THREADS_ENV, "OMP_NUM_THREADS"):  # a count the user set wins; OMP_NUM_THREADS is the usual knob
        setting = os.environ.get(name, "").strip()
        if setting:
            if not setting.isdigit() or int(setting) < 1:
                raise ValueError(f"{name}={setting!r}: give a whole number of threads >= 1, or unset it")
            return int(setting), name
    return None


def _share() -> int:
    """Processes torchrun started on this machine (they share its CPUs)."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def choose_threads(
    root: Path = CGROUP_ROOT, measure_others: bool = True, others: float | None = None
) -> tuple[int, str]:
    """The thread count for this process and a sentence saying why.

    ``others``: how many CPUs other processes keep busy, when the caller measured it (:class:`ThreadGovernor`);
    None measures it now (for 0.3 s) when ``measure_others``.
    """
    setting = user_setting()
    if setting is not None:
        return setting[0], f"{setting[0]} from {setting[1]}"
    cpus = affinity_cpus()
    share = _share()
    per = f" shared by {share} processes" if share > 1 else ""
    quota = cgroup_cpu_quota(root)
    if quota is not None and quota < len(cpus):
        n = max(1, math.floor(quota / share))
        return n, f"{n}: the cgroup CPU quota is {quota:g} CPUs{per} (the machine shows {os.cpu_count()})"
    if others is None:
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
    global _CHOSEN
    _CHOSEN = n
    if _GOVERNOR is not None:  # a count chosen here is the governor's to follow, not one set by hand
        _GOVERNOR.take_charge(n)
    return f"torch threads: {why}"


def cpu_counters(cpus: list[int]) -> tuple[float, float]:
    """(busy CPU-seconds of ``cpus`` since boot, CPU-seconds this process used): the growth of both between two
    readings says how many of ``cpus`` other processes kept busy meanwhile. About 0.1 ms."""
    import psutil

    per_cpu = psutil.cpu_times(percpu=True)
    busy = 0.0
    for i in cpus:
        if i < len(per_cpu):
            t = per_cpu[i]._asdict()
            total = sum(t.values()) - t.get("guest", 0.0) - t.get("guest_nice", 0.0)  # guest time is in user too
            busy += total - t["idle"] - t.get("iowait", 0.0)
    own = psutil.Process().cpu_times()
    return busy, own.user + own.system


def torch_default_threads(cpus: list[int]) -> int:
    """The count torch starts with when nobody sets one: its physical cores, at most the usable CPUs."""
    import psutil

    return max(1, min(psutil.cpu_count(logical=False) or len(cpus), len(cpus)))


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


class ThreadGovernor:
    """Keeps torch's thread count right while a long loop runs: call it every step.

    A call reads the clock; every ``every_s`` seconds it also reads the CPU counters (:func:`cpu_counters`), works
    out how many CPUs other processes kept busy since the last re-check, makes the choice of :func:`choose_threads`
    again with that figure and sets the count when it changed.

    It is in charge of the count the package chose (:func:`configure_threads`) or, before that, of torch's own
    default, never of one chosen otherwise. It stands still while ``MEDSSL_THREADS`` or ``OMP_NUM_THREADS`` is set,
    under ``torchrun`` (the processes share the CPUs by rule), with ``MEDSSL_ADAPT_THREADS=0``, and while the count
    in force is not the one it is in charge of (``torch.set_num_threads`` called by hand, as the tests that compare
    two runs bit for bit do: results depend on the thread count), until :func:`configure_threads` sets one again.

    Args:
        every_s: seconds between re-checks.
        root: the cgroup hierarchy (for the quota).
        clock, counters, get_threads, set_threads: what it reads and sets (tests inject their own).
    """

    def __init__(
        self,
        every_s: float = ADAPT_EVERY_S,
        root: Path = CGROUP_ROOT,
        clock: Callable[[], float] = time.monotonic,
        counters: Callable[[list[int]], tuple[float, float]] = cpu_counters,
        get_threads: Callable[[], int] = _torch_threads,
        set_threads: Callable[[int], None] = _set_torch_threads,
    ) -> None:
        self.every_s, self.root, self.clock, self.counters = every_s, root, clock, counters
        self.get_threads, self.set_threads = get_threads, set_threads
        self.cpus = affinity_cpus()
        #: the count it is in charge of: the package's choice, else torch's default
        self.expected = _CHOSEN if _CHOSEN is not None else torch_default_threads(self.cpus)
        self.changes: list[tuple[float, int, int, str]] = []  #: (clock, old count, new count, why) of each change
        self.still = ""  #: why it left the count alone at the last re-check ("" when it did not)
        self._last = (clock(), *counters(self.cpus))

    def take_charge(self, n: int) -> None:
        """The package set ``n`` threads: follow from there."""
        self.expected = n

    def stands_still(self) -> str:
        """Why it leaves the count alone now, or ""."""
        if os.environ.get(ADAPT_ENV, "").strip() == "0":
            return f"{ADAPT_ENV}=0"
        setting = user_setting()
        if setting is not None:
            return f"{setting[1]} sets the count"
        if _share() > 1:
            return "the processes torchrun started share the CPUs by rule"
        if len(self.cpus) < 2:
            return "one CPU"
        current = self.get_threads()
        if current != self.expected:
            return f"{current} threads set by hand (it is in charge of {self.expected})"
        return ""

    def __call__(self) -> bool:
        """Re-check when due; whether the thread count changed. Cheap between re-checks (one clock read)."""
        now = self.clock()
        if now - self._last[0] < self.every_s:
            return False
        return self._recheck(now)

    def _recheck(self, now: float) -> bool:
        before, busy_before, own_before = self._last
        busy, own = self.counters(self.cpus)
        self._last = (now, busy, own)
        self.still = self.stands_still()
        if self.still:
            return False
        others = max(0.0, ((busy - busy_before) - (own - own_before)) / max(now - before, 1e-9))
        n, why = choose_threads(self.root, others=others)
        current = self.get_threads()
        if n == current:
            return False
        self.set_threads(n)
        self.expected = n
        self.changes.append((now, current, n, why))
        return True


_GOVERNOR: ThreadGovernor | None = None
_CHOSEN: int | None = None  # the count configure_threads set in this process


def thread_governor() -> ThreadGovernor:
    """The process's governor (threads are the process's, whichever loop runs), made at the first call."""
    global _GOVERNOR
    if _GOVERNOR is None:
        _GOVERNOR = ThreadGovernor()
    return _GOVERNOR


def adapt_threads() -> bool:
    """Call every step of a long loop: every :data:`ADAPT_EVERY_S` seconds, torch's thread count is chosen again
    for how busy the CPUs are now (:class:`ThreadGovernor`). Whether it changed."""
    return thread_governor()()
