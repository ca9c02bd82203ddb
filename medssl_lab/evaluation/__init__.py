"""Turning a pretrained encoder into evidence.

* :mod:`~medssl_lab.evaluation.metrics`: AUC and ACC as MedMNIST reports them;
* :mod:`~medssl_lab.evaluation.sampling`: label fractions, few-shot draws, smaller evaluation splits;
* :mod:`~medssl_lab.evaluation.inference`: features, prototype assignments and probabilities in batches;
* :mod:`~medssl_lab.evaluation.probes`: kNN, linear and nearest-mean probes of frozen features;
* :mod:`~medssl_lab.evaluation.downstream`: the arms of the experiment and their one training loop;
* :mod:`~medssl_lab.evaluation.convergence` and :mod:`~medssl_lab.evaluation.robustness`: steps to a target, AUC
  under perturbations;
* :mod:`~medssl_lab.evaluation.clusters` and :mod:`~medssl_lab.evaluation.embedding`: what the prototypes learned,
  and 2-D maps of the embedding;
* :mod:`~medssl_lab.evaluation.representation`: the frozen-feature benchmark recipes are chosen on;
* :mod:`~medssl_lab.evaluation.reports`: the tables of a set of downstream runs.
"""
