"""The one table of profiles: every profile has every size, and the configs read it."""

from __future__ import annotations

import pytest

from medssl_lab.pretrain import PretrainConfig
from medssl_lab.profiles import DOWNSTREAM, PRETRAIN, PROFILES, PROTOCOL, SMALL_POOL, VAL_LIMIT, profile_settings
from medssl_lab.reproduce import ReproduceConfig


def test_every_table_has_every_profile_and_the_configs_read_them() -> None:
    for table in (PRETRAIN, SMALL_POOL, DOWNSTREAM, VAL_LIMIT, PROTOCOL):
        assert tuple(table) == PROFILES
    for profile in PROFILES:
        pre = PretrainConfig.for_profile(profile)
        assert all(getattr(pre, k) == v for k, v in PRETRAIN[profile].items())
        protocol = ReproduceConfig.for_profile(profile)
        assert protocol.steps == DOWNSTREAM[profile]["steps"] and protocol.val_limit == VAL_LIMIT[profile]
        assert protocol.train_config().batch_size == DOWNSTREAM[profile]["batch_size"]
    with pytest.raises(ValueError, match="unknown profile 'laptop'"):
        profile_settings(PRETRAIN, "laptop")


def test_a_small_pool_takes_its_batch_and_epochs_from_the_table_and_the_rest_from_the_profile() -> None:
    for profile in PROFILES:
        small, full = PretrainConfig.for_small_pool(profile, 10_000), PretrainConfig.for_profile(profile)
        assert (small.batch_size, small.epochs) == (SMALL_POOL[profile]["batch_size"], SMALL_POOL[profile]["epochs"])
        assert small.image_size == full.image_size and small.n_prototypes == full.n_prototypes
        assert small.batch_size < full.batch_size and small.epochs > full.epochs
    assert PretrainConfig.for_small_pool("cpu", 20).batch_size == 20  # never more than the pool holds
    assert PretrainConfig.for_small_pool("cpu", 348, epochs=2, seed=3).epochs == 2  # overrides on top
    with pytest.raises(ValueError, match="0 images"):
        PretrainConfig.for_small_pool("cpu", 0)
