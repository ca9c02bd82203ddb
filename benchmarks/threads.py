"""Pretraining throughput when the CPUs are shared: torch's default threads against the package's choice.

Usage: python benchmarks/threads.py [--data-dir DIR] [--steps 12]

Each scenario runs the cpu profile's pretraining step (``Pretrainer.train_step``) in a fresh process, after three
warm-up steps, and prints images per second:

* ``alone``: nothing else on the machine;
* ``beside a busy process``: one other process spins on a core the whole time (a shared laptop, a neighbour job);
* ``1-CPU affinity``: the process is pinned to one core with ``taskset -c 0``;
* ``1-CPU quota``: the process runs in a cgroup limited to one CPU (``cpu.cfs_quota_us`` = period, cgroup v1, or
  ``cpu.max``, v2) while the machine still shows every core, as in a Binder or JupyterHub pod. Needs root and a
  writable cgroup hierarchy; skipped (and said so) otherwise.

In every scenario, ``default`` leaves torch's thread count as torch chooses it (one per visible core) and ``auto``
calls :func:`medssl_lab.threads.configure_threads` first. Ratios are against ``auto`` alone; the target is at least
0.5 beside a busy process and under the 1-CPU affinity. Take the figures on an otherwise quiet machine. Ends with
one line ``alone=... busy_default=... busy_auto=... pinned_... quota_...`` (images per second).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import sys, time, torch
from medssl_lab.data.pool import build_pool
from medssl_lab.pretrain import PretrainConfig, Pretrainer
from medssl_lab.threads import configure_threads
mode, data_dir, steps = sys.argv[1], sys.argv[2] or None, int(sys.argv[3])
why = configure_threads() if mode == "auto" else f"torch default: {torch.get_num_threads()}"
config = PretrainConfig.for_profile("cpu", device="cpu", freeze_prototypes_steps=0)
trainer = Pretrainer(config, build_pool(size=config.image_size, data_dir=data_dir))
order = trainer._batch_order(0)
for i in range(3):
    trainer.train_step(order[i], epoch=0)
start = time.perf_counter()
for i in range(steps):
    trainer.train_step(order[3 + i], epoch=0)
print(f"{steps * config.batch_size / (time.perf_counter() - start):.1f}|{why}")
"""


def quota_group() -> Path | None:
    """A cgroup limited to one CPU, made for this benchmark (None where that is not possible)."""
    for base, files in (
        (Path("/sys/fs/cgroup/cpu"), ("cpu.cfs_quota_us", "cpu.cfs_period_us")),
        (Path("/sys/fs/cgroup"), ("cpu.max",)),
    ):
        group = base / "medssl_threads_benchmark"
        try:
            group.mkdir(exist_ok=True)
            if files[0] == "cpu.max":
                (group / "cpu.max").write_text("100000 100000")
            else:
                (group / "cpu.cfs_period_us").write_text("100000")
                (group / "cpu.cfs_quota_us").write_text("100000")
            return group
        except OSError:
            continue
    return None


def measure(mode: str, data_dir: str, steps: int, pinned: bool = False, group: Path | None = None) -> tuple[float, str]:
    """Images per second of one child process, and how it chose its threads."""
    command = [sys.executable, "-c", CHILD, mode, data_dir, str(steps)]
    if pinned:
        command = ["taskset", "-c", "0", *command]
    if group is not None:  # join the cgroup, then become the child
        tasks = group / ("tasks" if (group / "tasks").exists() else "cgroup.procs")
        command = ["sh", "-c", f'echo $$ > {tasks} && exec "$@"', "sh", *command]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    speed, why = out.split("|", 1)
    return float(speed), why


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per scenario (batches of 256)")
    args = parser.parse_args()
    results: dict[str, tuple[float, str]] = {}
    results["alone"] = measure("auto", args.data_dir, args.steps)
    results["alone_default"] = measure("default", args.data_dir, args.steps)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        results["busy_default"] = measure("default", args.data_dir, args.steps)
        results["busy_auto"] = measure("auto", args.data_dir, args.steps)
    finally:
        spinner.kill()
    results["pinned_default"] = measure("default", args.data_dir, args.steps, pinned=True)
    results["pinned_auto"] = measure("auto", args.data_dir, args.steps, pinned=True)
    group = quota_group()
    if group is None:
        print("1-CPU quota: no writable cgroup here (run as root on Linux to include it)")
    else:
        results["quota_default"] = measure("default", args.data_dir, args.steps, group=group)
        results["quota_auto"] = measure("auto", args.data_dir, args.steps, group=group)
    alone = results["alone"][0]
    for name, (speed, why) in results.items():
        print(f"{name:15} {speed:7.1f} img/s  {speed / alone:5.2f} of alone   ({why})")
    print(" ".join(f"{name}={speed:.1f}" for name, (speed, _) in results.items()))


if __name__ == "__main__":
    main()
