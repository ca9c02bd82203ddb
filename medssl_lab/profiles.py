"""The compute profiles, in one table: how big pretraining, its views and downstream training are in each.

* ``smoke``: seconds, for tests and CI;
* ``cpu``: the recipe chosen on the representation benchmark, about 11 minutes of pretraining on 2 free cores;
* ``cpu_long``: the cpu recipe for twice the epochs (under an hour), the best downstream gain on validation;
* ``gpu``: ResNet-18 at 64 px, SwAV's 2 + 6 views, 30 epochs.

Pretraining on a small pool of one's own (a few hundred images) takes smaller batches and more epochs
(:data:`SMALL_POOL`).

:class:`~medssl_lab.pretrain.PretrainConfig`, :class:`~medssl_lab.evaluation.downstream.TrainConfig`, the
reproduction protocol, the CLI's choices and the notebooks all read their sizes from here.
"""

from __future__ import annotations

from typing import Any

PROFILES: tuple[str, ...] = ("smoke", "cpu", "cpu_long", "gpu")

#: PretrainConfig fields that differ from its defaults (the cpu recipe), views included.
PRETRAIN: dict[str, dict[str, Any]] = {
    "smoke": dict(
        image_size=32,
        pool_limit=512,
        epochs=1,
        batch_size=64,
        global_size=16,
        local_size=8,
        n_local=2,
        n_prototypes=16,
        hidden_dim=64,
        proj_dim=32,
        freeze_prototypes_steps=0,
        log_every=2,
        knn_every=4,
        knn_images=128,
        checkpoint_every=4,
    ),
    "cpu": dict(),
    "cpu_long": dict(epochs=8),
    "gpu": dict(
        backbone="resnet18",
        image_size=64,
        epochs=30,
        batch_size=512,
        global_size=64,
        local_size=32,
        n_local=6,
        n_prototypes=300,
        hidden_dim=2048,
        proj_dim=128,
        queue_length=3840,
        queue_start_epoch=5,
        freeze_prototypes_steps=300,
        lr=1e-3,
        knn_every=250,
        knn_images=1024,
        checkpoint_every=1000,
    ),
}

#: PretrainConfig fields for a small pool of one's own (notebook 06: a few hundred images from a few folders), on top
#: of PRETRAIN: batches that such a pool fills several times per epoch, and more epochs, so that a run still takes
#: over a hundred steps (cpu: the example folders' 217 distinct images, 3 batches of 64 per epoch, 40 epochs). The
#: batch never exceeds the pool (:meth:`~medssl_lab.pretrain.PretrainConfig.for_small_pool`).
SMALL_POOL: dict[str, dict[str, Any]] = {
    "smoke": dict(batch_size=32, epochs=3),
    "cpu": dict(batch_size=64, epochs=40),
    "cpu_long": dict(batch_size=64, epochs=80),
    "gpu": dict(batch_size=128, epochs=200),
}

#: TrainConfig fields of downstream training, the same for every arm of a comparison.
#: ``dense_eval``: validate every 5 steps up to step 100, where convergence is decided.
DOWNSTREAM: dict[str, dict[str, Any]] = {
    "smoke": dict(steps=12, batch_size=32, eval_every=4, dense_eval=None),
    "cpu": dict(steps=300, batch_size=64, eval_every=25, dense_eval=(5, 100)),
    "cpu_long": dict(steps=300, batch_size=64, eval_every=25, dense_eval=(5, 100)),
    "gpu": dict(steps=1000, batch_size=128, eval_every=50, dense_eval=(5, 100)),
}

#: Validation images per downstream task at most (a stratified subset; None: all). MedNIST's validation split has
#: 5,895 images; validating on all of them every few steps would cost more than the training.
VAL_LIMIT: dict[str, int | None] = {"smoke": 300, "cpu": 1500, "cpu_long": 1500, "gpu": None}

#: The reproduction protocol's seeds, (task -> label fractions) and (task -> labels per class) where they differ from
#: the full protocol.
PROTOCOL: dict[str, dict[str, Any]] = {
    "smoke": dict(
        seeds=(0,),
        tasks={"pneumoniamnist": (0.1,), "mednist": (0.01,)},
        per_class={"pneumoniamnist": (5,), "mednist": (5,)},
        small_seeds=(0,),
    ),
    "cpu": dict(),
    "cpu_long": dict(),
    "gpu": dict(),
}


def profile_settings(table: dict[str, dict[str, Any]], profile: str) -> dict[str, Any]:
    """A copy of ``table[profile]``, with an error that lists the profiles when the name is unknown."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    return dict(table[profile])
