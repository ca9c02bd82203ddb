"""The Pretrained handle: a model with the config that made it and the data it saw."""

from __future__ import annotations

from pathlib import Path

import torch

from medssl_lab.data.synthetic import make_phantoms
from medssl_lab.data.types import ImageSet
from medssl_lab.pretrain import PretrainConfig, Pretrained, Pretrainer, build_model, load_pretrained


def test_a_trained_handle_and_its_checkpoint_agree(tmp_path: Path) -> None:
    ph = make_phantoms(64, 32, seed=0)
    pool = ImageSet(ph.images, ph.labels, ph.class_names, "multi-class")
    trainer = Pretrainer(PretrainConfig.for_profile("smoke", batch_size=32, max_steps=2, device="cpu"), pool, tmp_path)
    trainer.fit(progress=False)
    in_memory, loaded = trainer.pretrained(), load_pretrained(tmp_path)
    assert in_memory.config == loaded.config and in_memory.data == loaded.data and loaded.data["images"] == 64
    assert str(tmp_path) in loaded.origin and "64 images at 32 px" in loaded.describe()
    for (name, a), (_, b) in zip(in_memory.model.state_dict().items(), loaded.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert loaded.image_size == 32 and loaded.views() == loaded.config.augment_config()


def test_copy_is_independent_and_fresh_backbone_has_the_architecture(tmp_path: Path) -> None:
    ph = make_phantoms(64, 32, seed=0)
    pool = ImageSet(ph.images, ph.labels, ph.class_names, "multi-class")
    trainer = Pretrainer(PretrainConfig.for_profile("smoke", batch_size=32, max_steps=1, device="cpu"), pool, tmp_path)
    trainer.fit(progress=False)
    original = trainer.pretrained()
    copy = original.copy()
    with torch.no_grad():
        next(copy.model.parameters()).add_(1.0)
    assert not torch.equal(next(copy.model.parameters()), next(original.model.parameters()))
    fresh, dim = original.fresh_backbone()
    assert dim == original.model.feat_dim
    assert [p.shape for p in fresh.parameters()] == [p.shape for p in original.model.backbone.parameters()]


def test_random_init_is_the_seeded_build_and_leaves_the_callers_random_numbers_alone() -> None:
    config = PretrainConfig.for_profile("smoke", device="cpu")
    handle = Pretrained(build_model(config), config)
    torch.manual_seed(3)
    expected = build_model(config).state_dict()  # what the notebooks wrote before: seed the global RNG, then build
    torch.manual_seed(123)
    before = torch.get_rng_state()
    model = handle.random_init(3)
    assert torch.equal(torch.get_rng_state(), before)  # forked: the global stream did not move
    assert not model.training and next(model.parameters()).device.type == "cpu"
    got = model.state_dict()
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)
    other = handle.random_init(4).state_dict()
    assert not all(torch.equal(other[k], expected[k]) for k in other)
