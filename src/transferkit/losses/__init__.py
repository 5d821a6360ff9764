"""Pure loss functions shared by deep methods."""

from transferkit.losses.core import (
    GradientReverse,
    binary_domain_loss,
    entropy,
    grad_reverse,
    grl_schedule,
)

__all__ = ["GradientReverse", "binary_domain_loss", "entropy", "grad_reverse", "grl_schedule"]
from transferkit.losses.alignment import (
    afn_loss,
    bsp_loss,
    classifier_discrepancy,
    coral_loss,
    mcc_loss,
    mdd_loss,
)
from transferkit.losses.mmd import GaussianKernels, joint_mmd, mk_mmd

__all__ += ["GaussianKernels", "afn_loss", "bsp_loss", "classifier_discrepancy", "coral_loss",
            "joint_mmd", "mcc_loss", "mdd_loss", "mk_mmd"]
from transferkit.losses.information import (
    aligned_pseudo_labels,
    class_balanced_pseudo_labels,
    class_balanced_thresholds,
    cluster_pseudo_labels,
    confidence_pseudo_labels,
    information_maximization,
    marginal_entropy,
    nearest_centroid,
    pseudo_label_loss,
)

__all__ += ["aligned_pseudo_labels", "class_balanced_pseudo_labels", "class_balanced_thresholds", "cluster_pseudo_labels",
            "confidence_pseudo_labels", "information_maximization", "marginal_entropy", "nearest_centroid",
            "pseudo_label_loss"]
