"""Losses, one per module, each a function of embeddings (never of a model), and the registry a config names.

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

:data:`LOSSES` maps each role of a :class:`jepa_rag.config.LossConfig` (``contrastive``, ``isotropy``,
``predictive``) to the loss classes a config may name there, e.g. ``LOSSES["contrastive"]["infonce"]`` is
:class:`InfoNCELoss`; :func:`get_loss` looks one up and :func:`register_loss` adds one (see
:mod:`jepa_rag.losses.registry`).
"""

from .covariance_isotropy import CovarianceIsotropyLoss, covariance_isotropy
from .info_nce import InfoNCELoss, info_nce_loss
from .multi_positive_info_nce import MultiPositiveInfoNCELoss, multi_positive_info_nce_loss
from .predictive import PredictiveLoss, predictive_loss
from .registry import LOSSES, NO_LOSS, get_loss, known_losses, register_loss
from .sigreg import SIGRegLoss, sigreg_loss
from .triplet import TripletLoss, triplet_loss
from .uniformity import UniformityLoss, uniformity_loss
from .variance_target import variance_target_loss

__all__ = [
    "LOSSES",
    "NO_LOSS",
    "CovarianceIsotropyLoss",
    "InfoNCELoss",
    "MultiPositiveInfoNCELoss",
    "PredictiveLoss",
    "SIGRegLoss",
    "TripletLoss",
    "UniformityLoss",
    "covariance_isotropy",
    "get_loss",
    "info_nce_loss",
    "known_losses",
    "multi_positive_info_nce_loss",
    "predictive_loss",
    "register_loss",
    "sigreg_loss",
    "triplet_loss",
    "uniformity_loss",
    "variance_target_loss",
]
