"""medssl-lab: self-supervised learning (SwAV) on medical images, after Ghesu et al. 2022."""

__version__ = "0.1.0"
