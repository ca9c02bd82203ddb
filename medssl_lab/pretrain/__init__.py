"""Pretraining: settings, the SSL objective, the loop, checkpoints and the pretrained handle.

The names most code needs are importable from here: ``from medssl_lab.pretrain import PretrainConfig, pretrain``.
"""

from medssl_lab.pretrain.checkpoint import CHECKPOINT_NAME, export_encoder, load_checkpoint, shipped_encoder
from medssl_lab.pretrain.collapse import collapse_hint
from medssl_lab.pretrain.config import PretrainConfig, build_model
from medssl_lab.pretrain.distributed import process_group, setup_distributed
from medssl_lab.pretrain.methods import METHODS, make_objective
from medssl_lab.pretrain.objective import SSLObjective
from medssl_lab.pretrain.pretrained import Pretrained, load_pretrained
from medssl_lab.pretrain.trainer import History, Pretrainer, ShippedRun, ensure_pretrained, pretrain, shipped_run

__all__ = [
    "CHECKPOINT_NAME",
    "METHODS",
    "History",
    "PretrainConfig",
    "Pretrained",
    "Pretrainer",
    "SSLObjective",
    "ShippedRun",
    "build_model",
    "collapse_hint",
    "ensure_pretrained",
    "export_encoder",
    "load_checkpoint",
    "load_pretrained",
    "make_objective",
    "pretrain",
    "process_group",
    "setup_distributed",
    "shipped_encoder",
    "shipped_run",
]
