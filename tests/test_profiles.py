"""The one table of profiles: every profile has every size, and the configs read it."""

from __future__ import annotations

import pytest

from medssl_lab.pretrain import PretrainConfig
from medssl_lab.profiles import DOWNSTREAM, PRETRAIN, PROFILES, PROTOCOL, VAL_LIMIT, profile_settings
from medssl_lab.reproduce import ReproduceConfig


def test_every_table_has_every_profile_and_the_configs_read_them() -> None:
    for table in (PRETRAIN, DOWNSTREAM, VAL_LIMIT, PROTOCOL):
        assert tuple(table) == PROFILES
    for profile in PROFILES:
        pre = PretrainConfig.for_profile(profile)
        assert all(getattr(pre, k) == v for k, v in PRETRAIN[profile].items())
        protocol = ReproduceConfig.for_profile(profile)
        assert protocol.steps == DOWNSTREAM[profile]["steps"] and protocol.val_limit == VAL_LIMIT[profile]
        assert protocol.train_config().batch_size == DOWNSTREAM[profile]["batch_size"]
    with pytest.raises(ValueError, match="unknown profile 'laptop'"):
        profile_settings(PRETRAIN, "laptop")
