"""End-to-end pretraining throughput against the bare backbone on the same views.

Usage: python benchmarks/pretrain_throughput.py [--profile cpu] [--data-dir DIR] [--steps 20]

End-to-end = index a batch of the uint8 pool + multi-crop augmentation + forward/backward
of backbone, head and prototypes + SwAV loss with Sinkhorn + optimizer step + prototype
normalisation: exactly ``Pretrainer.train_step``. Bare = forward+backward of the backbone
alone on ready tensors of the same view shapes. The two are measured in alternating
blocks in one process so that machine noise hits both alike. Ends with one line
``e2e_img_s=... bare_img_s=... ratio=... peak_mb=...``.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from medssl_lab.data.pool import build_pool
from medssl_lab.pretrain import PretrainConfig, Pretrainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", choices=("smoke", "cpu", "gpu"))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per arm")
    parser.add_argument("--block", type=int, default=5, help="steps per alternating block")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    pool = build_pool(size=PretrainConfig.for_profile(args.profile).image_size, data_dir=args.data_dir)
    config = PretrainConfig.for_profile(args.profile, device=args.device, pool_limit=None, freeze_prototypes_steps=0)
    trainer = Pretrainer(config, pool)
    device, batch = trainer.device, config.batch_size
    sizes = trainer.augment.view_sizes
    views = [torch.randn(batch, 1, s, s, device=device) for s in sizes]
    if config.channels_last:
        views = [v.contiguous(memory_format=torch.channels_last) for v in views]
    backbone = trainer.model.backbone
    order = trainer._batch_order(0)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def e2e_step(i: int) -> None:
        trainer.train_step(order[i % len(order)], epoch=0)
        trainer.step += 1

    def bare_step(i: int) -> None:
        with torch.autocast(
            device.type, dtype=trainer.amp_dtype or torch.float32, enabled=trainer.amp_dtype is not None
        ):
            feats = [backbone(torch.cat([v for v in views if v.shape[-1] == s])) for s in dict.fromkeys(sizes)]
        sum(f.float().sum() for f in feats).backward()
        backbone.zero_grad(set_to_none=True)

    for i in range(3):  # warm-up: allocator, autotuning, first-call costs
        e2e_step(i)
        bare_step(i)
    spent = {"e2e": 0.0, "bare": 0.0}
    done = 0
    while done < args.steps:
        for name, fn in (("e2e", e2e_step), ("bare", bare_step)):
            sync()
            start = time.perf_counter()
            for i in range(args.block):
                fn(done + i)
            sync()
            spent[name] += time.perf_counter() - start
        done += args.block
    e2e, bare = done * batch / spent["e2e"], done * batch / spent["bare"]
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
        where = "GPU"
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        where = "process RSS"
    print(
        f"profile={args.profile} device={device} threads={torch.get_num_threads()} pool={len(pool)} batch={batch} "
        f"views={sizes} backbone={config.backbone}"
    )
    print(
        f"end-to-end: {e2e:.0f} img/s; bare backbone fwd+bwd: {bare:.0f} img/s; ratio {e2e / bare:.3f}; "
        f"peak memory ({where}) {peak_mb:.0f} MB"
    )
    print(f"e2e_img_s={e2e:.1f} bare_img_s={bare:.1f} ratio={e2e / bare:.3f} peak_mb={peak_mb:.0f}")


if __name__ == "__main__":
    main()
