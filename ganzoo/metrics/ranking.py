"""Ranking metrics: AUROC and average precision (anomaly detection), R-precision (text-to-image).

AUROC and AUPRC are exact, with ties handled the way scikit-learn's ``roc_auc_score`` and
``average_precision_score`` handle them, and computed in float64 on the scores' device.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["auroc", "auprc", "r_precision"]


def _scores_labels(scores: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, int, int]:
    s = torch.as_tensor(scores).reshape(-1).to(torch.float64)
    y = torch.as_tensor(labels).reshape(-1).to(s.device)
    if s.numel() != y.numel():
        raise ValueError(f"{s.numel()} scores but {y.numel()} labels")
    if torch.isnan(s).any():
        raise ValueError("scores contain NaN")
    if y.dtype != torch.bool:
        if not ((y == 0) | (y == 1)).all():
            raise ValueError("labels must be 0/1 or bool (1 = positive, e.g. anomalous)")
        y = y == 1
    n_pos = int(y.sum())
    return s, y, n_pos, y.numel() - n_pos


def auroc(scores: Tensor, labels: Tensor) -> float:
    """Area under the ROC curve; higher scores mean "more positive".

    Computed as the Mann-Whitney statistic with mid-ranks: the probability that a random positive outscores a
    random negative, a tie counting one half. That is exactly the trapezoidal ROC area with tied scores forming
    one diagonal step, i.e. ``sklearn.metrics.roc_auc_score``.
    """
    s, y, n_pos, n_neg = _scores_labels(scores, labels)
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs both positive and negative labels")
    sorted_s, order = torch.sort(s)
    _, counts = torch.unique_consecutive(sorted_s, return_counts=True)
    ends = torch.cumsum(counts, 0).to(torch.float64)
    # Every member of a tie group gets the mean of the 1-based ranks the group spans.
    group_rank = ends - (counts.to(torch.float64) - 1) / 2
    ranks = torch.empty_like(s)
    ranks[order] = torch.repeat_interleave(group_rank, counts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def auprc(scores: Tensor, labels: Tensor) -> float:
    """Average precision, ``sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds (descending).

    This is ``sklearn.metrics.average_precision_score``: a step-wise sum, not the trapezoidal area (which is
    optimistic), and tied scores enter as one threshold.
    """
    s, y, n_pos, _ = _scores_labels(scores, labels)
    if n_pos == 0:
        raise ValueError("average precision needs at least one positive label")
    sorted_s, order = torch.sort(s, descending=True)
    _, counts = torch.unique_consecutive(sorted_s, return_counts=True)
    last = torch.cumsum(counts, 0) - 1  # index of the last sample at or above each threshold
    tp = torch.cumsum(y[order].to(torch.float64), 0)[last]
    precision = tp / (last + 1).to(torch.float64)
    recall = tp / n_pos
    delta = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((delta * precision).sum())


@torch.no_grad()
def r_precision(
    image_feats: Tensor,
    text_feats: Tensor,
    true_index: Tensor | None = None,
    candidates: int = 100,
    generator: torch.Generator | None = None,
    chunk_size: int = 256,
) -> float:
    """R-precision of AttnGAN (Xu et al. 2018): top-1 retrieval of the true caption among ``candidates``.

    For each image, its true caption and ``candidates - 1`` others drawn uniformly without replacement from the
    rest of ``text_feats`` are ranked by cosine similarity; a hit is the true caption scoring strictly above
    every other candidate (ties count as misses, so constant features score 0, not 100%).

    Args:
        image_feats: (N, D) image embeddings.
        text_feats: (M, D) caption embeddings, M >= candidates.
        true_index: (N,) index into ``text_feats`` of each image's caption; default ``arange(N)`` (paired rows).
        generator: draws the distractors; pass a seeded one for repeatable numbers, a fresh seed per run for the
            protocol's mean +- std over 10 runs.

    Returns:
        The fraction of hits in [0, 1].
    """
    img = torch.nn.functional.normalize(image_feats.reshape(image_feats.shape[0], -1).to(torch.float64), dim=1)
    txt = torch.nn.functional.normalize(text_feats.reshape(text_feats.shape[0], -1).to(torch.float64), dim=1)
    txt = txt.to(img.device)
    n, m = img.shape[0], txt.shape[0]
    if m < candidates:
        raise ValueError(f"need at least {candidates} captions to draw candidates from, got {m}")
    if true_index is None:
        if m < n:
            raise ValueError("without true_index, image i is paired with caption i, so M must be >= N")
        true_index = torch.arange(n)
    true_idx = true_index.reshape(-1).long().to(img.device)
    if true_idx.numel() != n:
        raise ValueError(f"true_index has {true_idx.numel()} entries for {n} images")
    gen_device = generator.device if generator is not None else torch.device("cpu")
    hits = 0
    for start in range(0, n, chunk_size):
        idx = true_idx[start : start + chunk_size]
        b = idx.numel()
        weights = torch.ones(b, m, dtype=torch.float32, device=gen_device)
        weights[torch.arange(b, device=gen_device), idx.to(gen_device)] = 0  # never draw the true caption again
        others = torch.multinomial(weights, candidates - 1, replacement=False, generator=generator).to(img.device)
        # One (b, M) similarity block is cheaper than gathering (b, candidates, D) caption vectors.
        sims = img[start : start + chunk_size] @ txt.T
        true_sim = sims.gather(1, idx[:, None])[:, 0]
        other_sim = sims.gather(1, others)
        hits += int((true_sim > other_sim.max(dim=1).values).sum())
    return hits / n
