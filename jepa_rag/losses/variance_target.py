import torch


def variance_target_loss(z: torch.Tensor, target_std: float = 1.0) -> torch.Tensor:
    """The seed's scale regulariser: :math:`L = (\\mathrm{std}(\\text{all entries of } Z) - \\sigma)^2`.

    Used (λ = 0.1) by the research note's "baseline" head only.
    """
    return (z.std() - target_std) ** 2
