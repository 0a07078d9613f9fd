"""The loss registry: the names a :class:`jepa_rag.config.LossConfig` may give each loss term.

A term's loss is a class built from the ``LossConfig`` (it reads its own hyperparameters there) and called on
embeddings, with one calling convention per role:

=============  =====================================================================================
``contrastive``  ``loss(q, pos, neg, *, pos_ids, neg_ids, known_positive)`` — queries, positives, hard negatives
``isotropy``     ``loss(z)`` — the batch's projected queries and positives
``predictive``   ``loss(prediction, target)`` — the predictor's output and its (stop-gradient) target
=============  =====================================================================================

Register a new one with ``@register_loss("contrastive", "my_loss")``; a config can name it from then on.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError

ROLES = ("contrastive", "isotropy", "predictive")
LOSSES: dict[str, dict[str, type]] = {role: {} for role in ROLES}
# a config value that turns a role's term off rather than naming a loss
NO_LOSS = "none"


def register_loss(role: str, name: str) -> Callable[[type], type]:
    """Class decorator: make ``loss.<role>: <name>`` in a config build this class."""
    if role not in LOSSES:
        raise ValueError(f"unknown loss role {role!r}; roles: {list(ROLES)}")

    def register(cls: type) -> type:
        LOSSES[role][name] = cls
        return cls

    return register


def known_losses(role: str) -> list[str]:
    """The names ``loss.<role>`` accepts (for ``isotropy``, ``"none"`` too)."""
    return sorted(LOSSES[role]) + ([NO_LOSS] if role == "isotropy" else [])


def get_loss(role: str, name: str) -> type:
    """The class registered as ``name`` for ``role``, or :class:`ConfigError` listing the known names."""
    if name not in LOSSES.get(role, {}):
        raise ConfigError(f"loss.{role} must be one of {known_losses(role)} (the registered losses), got {name!r}")
    return LOSSES[role][name]
