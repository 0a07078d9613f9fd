"""Losses, one per module, each a function of embeddings (never of a model).

====================================  ===================================================================
:func:`triplet_loss`                  the seed's Euclidean triplet hinge ``mean max(0, ‖q−d⁺‖ − ‖q−d⁻‖ + m)``
:func:`info_nce_loss`                 InfoNCE over in-batch and hard negatives, duplicate positives masked
:func:`multi_positive_info_nce_loss`  InfoNCE with every judged positive in the batch as a target
:func:`covariance_isotropy`           the seed's ``‖Cov(Z) − s·I‖_F / D``
:func:`sigreg_loss`                   LeJEPA's SIGReg (sliced Epps–Pulley test against N(0, 1))
:func:`uniformity_loss`               Wang & Isola's ``log E exp(−t‖zᵢ−zⱼ‖²)``
:func:`predictive_loss`               ``MSE`` or ``1 − cos`` of a prediction to a stop-gradient target
:func:`variance_target_loss`          the seed's ``(std(Z) − σ)²`` regulariser
====================================  ===================================================================
"""

from .covariance_isotropy import covariance_isotropy
from .info_nce import info_nce_loss
from .multi_positive_info_nce import multi_positive_info_nce_loss
from .predictive import predictive_loss
from .sigreg import sigreg_loss
from .triplet import triplet_loss
from .uniformity import uniformity_loss
from .variance_target import variance_target_loss

__all__ = [
    "covariance_isotropy",
    "info_nce_loss",
    "multi_positive_info_nce_loss",
    "predictive_loss",
    "sigreg_loss",
    "triplet_loss",
    "uniformity_loss",
    "variance_target_loss",
]
