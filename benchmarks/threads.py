"""Pretraining throughput when the CPUs are shared: torch's default threads against the package's choice, at the
start of a run and while it runs.

Usage: python benchmarks/threads.py [--data-dir DIR] [--part startup|shared|all] [--steps 12] [--seconds 40]

**startup** (the choice made once, when a run starts). Each scenario runs the cpu profile's pretraining step
(``Pretrainer.train_step``) in a fresh process, after three warm-up steps, and prints images per second:

* ``alone``: nothing else on the machine;
* ``beside a busy process``: one other process spins on a core the whole time (a shared laptop, a neighbour job);
* ``1-CPU affinity``: the process is pinned to one core with ``taskset -c 0``;
* ``1-CPU quota``: the process runs in a cgroup limited to one CPU (``cpu.cfs_quota_us`` = period, cgroup v1, or
  ``cpu.max``, v2) while the machine still shows every core, as in a Binder or JupyterHub pod. Needs root and a
  writable cgroup hierarchy; skipped (and said so) otherwise.

In every scenario, ``default`` leaves torch's thread count as torch chooses it (one per visible core) and ``auto``
calls :func:`medssl_lab.threads.configure_threads` first. Ratios are against ``auto`` alone; the target is at least
0.5 beside a busy process and under the 1-CPU affinity. Ends with one line ``alone=... busy_default=...
busy_auto=... pinned_... quota_...`` (images per second).

**shared** (other torch work beside a long run). The cpu profile's pretraining loop (``Pretrainer.fit``, the kNN
monitor off) runs for ``--seconds`` after three warm-up steps, in three scenarios:

* ``alone``;
* ``competitor from the start``: a second, identical pretraining process starts at the same moment;
* ``competitor mid-run``: the run trains alone for ``--alone-seconds``, then the second process starts (as a user
  starts a notebook beside a running pretraining); its rate is counted from that moment to its end.

Both processes call ``configure_threads`` at their start (as ``medssl-lab pretrain`` does). ``fixed`` keeps that
first choice (``MEDSSL_ADAPT_THREADS=0``: the behaviour before the loop re-checked it), ``adaptive`` lets the loop
re-check it every ``ADAPT_EVERY_S`` seconds (:func:`medssl_lab.threads.adapt_threads`); both processes of a scenario
run the same way. Ratios are against the same way's ``alone``; the target is at least 0.5 in both shared scenarios.
Ends with one line ``shared: alone_fixed=... mid_adaptive=...`` (images per second).

Take the figures on an otherwise quiet machine (``uptime``: a load average near 0).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
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


SHARED_CHILD = """
import json, os, sys, time
from pathlib import Path
mode, data_dir, seconds, ready = sys.argv[1], sys.argv[2] or None, float(sys.argv[3]), Path(sys.argv[4])
first = int(sys.argv[5])
if mode == "fixed":
    os.environ["MEDSSL_ADAPT_THREADS"] = "0"
import torch
from medssl_lab.threads import configure_threads, thread_governor
why = configure_threads()
if first:  # as if the CPUs had been free when the run started
    torch.set_num_threads(first)
    thread_governor().take_charge(first)
    why = f"{first} threads set as the first choice (--first-threads)"
from medssl_lab.data.pool import build_pool
from medssl_lab.pretrain import PretrainConfig, Pretrainer
config = PretrainConfig.for_profile("cpu", device="cpu", knn_every=0, max_steps=10**6, epochs=1000)
trainer = Pretrainer(config, build_pool(size=config.image_size, data_dir=data_dir))
stamps = []  # (time.time() at the end of each step, torch threads then)
step = trainer.train_step
class Done(Exception):
    pass
def timed(index, epoch):
    out = step(index, epoch)
    stamps.append((time.time(), torch.get_num_threads()))
    if len(stamps) == 3:
        ready.touch()  # warmed up: the timed part starts
    if len(stamps) > 3 and stamps[-1][0] - stamps[2][0] >= seconds:
        raise Done
    return out
trainer.train_step = timed
try:
    trainer.fit(progress=False)
except Done:
    pass
offset = time.time() - time.monotonic()  # the governor's clock is time.monotonic
changes = [(round(t + offset - stamps[2][0], 1), a, b, w) for t, a, b, w in thread_governor().changes]
print(json.dumps({"why": why, "stamps": stamps, "batch": config.batch_size, "changes": changes}))
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


def startup(args: argparse.Namespace) -> None:
    """The choice made once at the start: torch's default against configure_threads, in four situations."""
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


def start_run(
    mode: str, data_dir: str, seconds: float, folder: Path, name: str, first: int = 0
) -> tuple[subprocess.Popen, Path]:
    """One pretraining process of the shared scenarios (its rates come back on its stdout), and its ready file."""
    ready = folder / f"{name}.ready"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MEDSSL_THREADS")}
    command = [sys.executable, "-c", SHARED_CHILD, mode, data_dir, str(seconds), str(ready), str(first)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env), ready


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"a pretraining process failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def rate_after(run: dict, since: float) -> float:
    """Images per second of the steps that ended after ``since`` (a time.time()), to the run's last step."""
    ends = [t for t, _ in run["stamps"][2:]]
    start = max(since, ends[0])
    done = sum(t > start for t in ends)
    return done * run["batch"] / max(ends[-1] - start, 1e-9)


def wait_for(path: Path, process: subprocess.Popen) -> None:
    while not path.exists():
        if process.poll() is not None:
            finish(process)  # says why it stopped
            raise SystemExit("a pretraining process stopped before its warm-up")
        time.sleep(0.2)


def shared_scenario(kind: str, mode: str, args: argparse.Namespace, folder: Path) -> dict:
    """The measured run's images/s in one scenario, how it chose its threads and how they changed."""
    n = args.first_threads
    if kind == "alone":
        run = finish(start_run(mode, args.data_dir, args.seconds, folder, f"{kind}-{mode}", n)[0])
        return {"rate": rate_after(run, 0.0), "run": run}
    if kind == "start":
        first, _ = start_run(mode, args.data_dir, args.seconds, folder, f"{kind}-{mode}-a", n)
        second, _ = start_run(mode, args.data_dir, args.seconds + 30, folder, f"{kind}-{mode}-b", n)
        run = finish(first)
        second.kill()
        second.communicate()
        return {"rate": rate_after(run, 0.0), "run": run}
    first, ready = start_run(mode, args.data_dir, args.alone_seconds + args.seconds, folder, f"{kind}-{mode}-a", n)
    wait_for(ready, first)
    time.sleep(args.alone_seconds)
    arrival = time.time()
    second, _ = start_run(mode, args.data_dir, args.seconds + 30, folder, f"{kind}-{mode}-b")
    run = finish(first)
    second.kill()
    second.communicate()
    return {"rate": rate_after(run, arrival), "before": rate_after(run, 0.0), "run": run, "arrival": arrival}


def shared(args: argparse.Namespace) -> None:
    """Another pretraining beside a long run, from its start and arriving mid-run: the first choice kept or
    re-checked while the run trains."""
    names = {"alone": "alone", "start": "competitor from the start", "mid": "competitor mid-run"}
    names = {kind: names[kind] for kind in args.scenarios.split(",")}
    results: dict[tuple[str, str], dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        for mode in ("fixed", "adaptive"):
            for kind in names:
                results[kind, mode] = r = shared_scenario(kind, mode, args, Path(folder))
                alone = results.get(("alone", mode), r)["rate"]
                print(
                    f"{names[kind]:26} {mode:8} {r['rate']:7.1f} img/s ({r['rate'] / 256:.2f} steps/s) "
                    f"{r['rate'] / alone:5.2f} of alone   ({r['run']['why']}; changes {r['run']['changes']})",
                    flush=True,
                )
    print("shared: " + " ".join(f"{kind}_{mode}={r['rate']:.1f}" for (kind, mode), r in results.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--part", choices=("startup", "shared", "all"), default="all")
    parser.add_argument("--steps", type=int, default=12, help="startup: timed steps per scenario (batches of 256)")
    parser.add_argument("--seconds", type=float, default=40.0, help="shared: timed seconds of the measured run")
    parser.add_argument("--alone-seconds", type=float, default=10.0, help="shared: alone before the competitor")
    parser.add_argument("--scenarios", default="alone,start,mid", help="shared: which of alone,start,mid")
    parser.add_argument(
        "--first-threads",
        type=int,
        default=0,
        help="shared: start the measured run (and a competitor from the start) with this many threads instead of "
        "configure_threads' choice, as if the CPUs had been free then (to see the re-check on a busy machine)",
    )
    args = parser.parse_args()
    if args.part in ("startup", "all"):
        startup(args)
    if args.part in ("shared", "all"):
        shared(args)


if __name__ == "__main__":
    main()
