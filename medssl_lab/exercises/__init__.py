"""Checks of the course's exercises: run a student's function on small real cases and say what is wrong.

``check_<name>(student_function)`` prints one line of feedback (correct, not solved yet, or the
first difference with a likely cause, never the solution) and returns a
:class:`~medssl_lab.exercises.feedback.CheckResult`. An unsolved exercise never stops a
notebook: ``result.function`` is the library's implementation until the student's is right.
One module per notebook.
"""

from medssl_lab.exercises.clusters import check_nearest_prototype, check_purity
from medssl_lab.exercises.data_tour import check_hounsfield, check_window_level
from medssl_lab.exercises.embeddings import check_knn_classify
from medssl_lab.exercises.feedback import CheckResult
from medssl_lab.exercises.finetuning import check_binary_auc, check_steps_to_target
from medssl_lab.exercises.own_data import check_percentile_to_uint8, check_pseudonym
from medssl_lab.exercises.robustness import check_gamma_perturbation, check_mean_auc_drops
from medssl_lab.exercises.swav import check_sinkhorn_codes, check_swapped_prediction_loss

__all__ = [
    "CheckResult",
    "check_binary_auc",
    "check_gamma_perturbation",
    "check_hounsfield",
    "check_knn_classify",
    "check_mean_auc_drops",
    "check_nearest_prototype",
    "check_percentile_to_uint8",
    "check_pseudonym",
    "check_purity",
    "check_sinkhorn_codes",
    "check_steps_to_target",
    "check_swapped_prediction_loss",
    "check_window_level",
]
