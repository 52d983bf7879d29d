"""k-NN manifold metrics on feature vectors: improved precision/recall and density/coverage.

Both pairs estimate a data manifold as the union of balls around samples, each ball reaching
the k-th nearest other sample of the same set (the sample itself excluded):

* Precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for
  Assessing Generative Models"), k=3: precision is the share of fake samples inside at least
  one real ball, recall the share of real samples inside at least one fake ball. The balls are
  closed (distance <= radius), as in the paper's code and in torch-fidelity, which computes
  them here (`torch_fidelity.metric_prc`, torch-fidelity >= 0.4).
* Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
  Generative Models"), k=5: density = (1/kM) * sum over fakes of the number of real balls
  holding it; coverage = share of real balls holding at least one fake. The balls are open
  (distance < radius), as in the authors' code (clovaai/generative-evaluation-prdc), so that a
  fake set identical to the real one has density exactly 1 (every ball then holds its centre
  and the k-1 nearest others; closed balls would also count the k-th and give (k+1)/k).

Distances are Euclidean and computed in float64, in row batches of `batch_size`, so memory holds
at most a few `batch_size x max(N, M)` matrices, never `N x M` (about 80 MB each for 1024 x 10k).
Density and coverage settle ties exactly (a fake duplicating a real sample sits exactly on other
balls' boundaries; see `_exact_sq`), so a shuffled copy of the real set scores density 1.0 and
coverage 1.0 exactly. Precision and recall use torch-fidelity's `torch.cdist` distances as they
are; there a duplicate lies inside its twin's own ball whatever the rounding, so ties hardly
matter. Inputs with exact duplicates inside the real set can have k-NN radius 0; such an open
ball holds nothing, as in the authors' code.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gans.errors import GansError

__all__ = ["precision_recall", "density_coverage"]


@torch.no_grad()
def precision_recall(real: Tensor, fake: Tensor, k: int = 3, batch_size: int = 1024) -> dict:
    """Improved precision and recall of `fake` against `real` features, shapes (N, D) and (M, D).

    Returns {"precision": float, "recall": float}, each a count divided by M (precision) or N
    (recall). Computed by torch-fidelity's own routine on float64 copies of the features.
    """
    real, fake = _prepare(real, fake, k, batch_size, "precision_recall", fake_needs_radii=True)
    try:
        from torch_fidelity.metric_prc import prc_features_to_metric
    except ImportError:
        raise GansError("precision_recall needs torch-fidelity >= 0.4 (it has no metric_prc before); "
                        "pip install -U 'torch-fidelity>=0.4'") from None
    # torch-fidelity's convention: features_1 is generated, features_2 is real.
    out = prc_features_to_metric(fake, real, prc_neighborhood=k, prc_batch_size=batch_size,
                                 save_cpu_ram=True, verbose=False)
    # torch-fidelity averages in float32 (`.float().mean()`), so 0.7 comes back as 0.69999998...;
    # the float32 error is far below 1/(2 * count) here, so rounding recovers the exact count.
    return {"precision": _exact_share(out["precision"], len(fake)),
            "recall": _exact_share(out["recall"], len(real))}


@torch.no_grad()
def density_coverage(real: Tensor, fake: Tensor, k: int = 5, batch_size: int = 1024) -> dict:
    """Density and coverage of `fake` against `real` features, shapes (N, D) and (M, D).

    Returns {"density": float, "coverage": float}. Density is not bounded by 1 (fakes crowded
    where real balls overlap count once per ball); coverage is in [0, 1]. Ties are exact: the
    result is what comparing every distance computed by `_exact_sq` would give (see there).
    """
    real, fake = _prepare(real, fake, k, batch_size, "density_coverage", fake_needs_radii=False)
    real_sq, fake_sq = _sq_norms(real), _sq_norms(fake)
    slack = _slack(real.shape[1])
    in_balls = 0   # sum over (real i, fake j) of [fake j inside real ball i]
    covered = 0    # number of real balls holding at least one fake
    for start in range(0, len(real), batch_size):
        rows, rows_sq = real[start:start + batch_size], real_sq[start:start + batch_size]
        radii_sq = _kth_neighbour_sq(rows, rows_sq, start, real, real_sq, k, slack)
        held = _count_within(rows, rows_sq, radii_sq, fake, fake_sq, slack)
        in_balls += int(held.sum())
        covered += int((held > 0).sum())
    return {"density": in_balls / (k * len(fake)), "coverage": covered / len(real)}


# --- distances, with ties settled exactly -------------------------------------------------------
#
# Bulk squared distances come from one matrix product, |x|^2 + |y|^2 - 2 x.y, which is fast but
# rounds differently depending on where a pair sits in the matrix: a fake that duplicates a real
# sample (a shuffled copy of the real set, say) could land a rounding error inside or outside a
# ball whose boundary it sits exactly on. So every comparison the product cannot settle within a
# proven error bound is redone with `_exact_sq`, a fixed per-pair formula that gives the same bits
# for the same two vectors wherever they sit; in practice that is a few pairs per row.

_PAIR_ELEMENTS = 1 << 22   # elements per chunk of `_exact_sq` (32 MiB of float64)
_EXTRA = 8                 # neighbours fetched beyond the k-th, to hold near-ties


def _sq_norms(x: Tensor) -> Tensor:
    return (x * x).sum(dim=1)


def _slack(dim: int) -> float:
    """c such that |product formula - _exact_sq| <= c * (|x|^2 + |y|^2) for every pair.

    Any float64 summation order of D terms errs by at most gamma_D = D*u/(1 - D*u) of the sum of
    magnitudes (u = 2**-53): the norms by gamma_D |x|^2, the dot product by gamma_D |x||y|, the two
    final additions by 4u(|x|^2 + |y|^2), and `_exact_sq` by gamma_(D+1) |x - y|^2, which is at most
    2 gamma_(D+1) (|x|^2 + |y|^2). That totals below (4D + 8) u (|x|^2 + |y|^2); double it.
    """
    return 2.0 * (4 * dim + 8) * 2.0 ** -53


def _partial_sq(rows: Tensor, points: Tensor, points_sq: Tensor) -> Tensor:
    """|y_j|^2 - 2 x_i.y_j for all pairs; adding |x_i|^2 (constant along a row) gives distance^2."""
    return torch.addmm(points_sq.unsqueeze(0), rows, points.T, alpha=-2.0)


def _exact_sq(a: Tensor, ia: Tensor, b: Tensor, ib: Tensor) -> Tensor:
    """|a[ia] - b[ib]|^2 per pair, summed in a fixed pairwise tree: the same bits for the same two
    vectors whatever their position, chunk or thread count, and symmetric in a and b."""
    out = torch.empty(len(ia), dtype=a.dtype, device=a.device)
    dim = a.shape[1]
    width = 1 << max(dim - 1, 0).bit_length()   # next power of two >= dim
    chunk = max(1, _PAIR_ELEMENTS // width)
    for lo in range(0, len(ia), chunk):
        diff = a[ia[lo:lo + chunk]] - b[ib[lo:lo + chunk]]
        terms = torch.nn.functional.pad(diff * diff, (0, width - dim))  # zeros add exactly
        while terms.shape[1] > 1:
            half = terms.shape[1] // 2
            terms = terms[:, :half] + terms[:, half:]
        out[lo:lo + chunk] = terms[:, 0]
    return out


def _kth_neighbour_sq(rows: Tensor, rows_sq: Tensor, start: int, points: Tensor, points_sq: Tensor,
                      k: int, slack: float) -> Tensor:
    """Squared distance from each of `rows` (= points[start:start+len(rows)]) to its k-th nearest
    other point, as `_exact_sq` computes it (the point itself excluded, duplicates counted)."""
    n, b = len(points), len(rows)
    part = _partial_sq(rows, points, points_sq)
    local = torch.arange(b, device=rows.device)
    part[local, local + start] = -rows_sq      # the point itself: distance exactly 0
    m = min(k + 1 + _EXTRA, n)
    vals, cols = part.topk(m, dim=1, largest=False, sorted=True)
    del part
    vals += rows_sq.unsqueeze(1)               # now approximate squared distances
    width = 2 * slack * (rows_sq + points_sq.max())   # twice the bound: covers the k-th's own error
    approx = vals[:, k]
    below = vals < (approx - width).unsqueeze(1)      # surely nearer than the k-th neighbour
    near = ~below & (vals <= (approx + width).unsqueeze(1))
    ri, ci = near.nonzero(as_tuple=True)
    ranked = torch.full_like(vals, float("inf"))
    ranked[below] = -float("inf")
    ranked[ri, ci] = _exact_sq(rows, ri, points, cols[ri, ci])
    radii_sq = ranked.kthvalue(k + 1, dim=1).values
    # A row whose m nearest all lie within the uncertainty (many duplicates) may have more
    # candidates beyond them: settle it from the whole row, computed exactly.
    if m < n:
        for i in torch.nonzero(vals[:, -1] <= approx + width).flatten().tolist():
            exact = _exact_sq(rows, torch.full((n,), i, device=rows.device), points,
                              torch.arange(n, device=rows.device))
            exact[start + i] = 0.0
            radii_sq[i] = exact.kthvalue(k + 1).values
    return radii_sq


def _count_within(rows: Tensor, rows_sq: Tensor, radii_sq: Tensor, points: Tensor,
                  points_sq: Tensor, slack: float) -> Tensor:
    """Per row i, how many points lie strictly inside the ball around rows[i] of squared radius
    radii_sq[i] (open ball, distances as `_exact_sq` computes them)."""
    part = _partial_sq(rows, points, points_sq)
    width = (slack * (rows_sq + points_sq.max())).unsqueeze(1)
    target = (radii_sq - rows_sq).unsqueeze(1)     # inside: part < target
    held = (part < target - width).sum(dim=1)      # surely inside
    unsure = (part <= target + width).sum(dim=1) - held
    if int(unsure.sum()):
        ri, ci = ((part >= target - width) & (part <= target + width)).nonzero(as_tuple=True)
        inside = _exact_sq(rows, ri, points, ci) < radii_sq[ri]
        held.index_add_(0, ri, inside.to(held.dtype))
    return held


def _exact_share(share: float, count: int) -> float:
    return round(share * count) / count


def _prepare(real, fake, k, batch_size, name, fake_needs_radii):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise GansError(f"{name}: k must be a whole number >= 1, got {k!r}; pass e.g. k=3")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise GansError(f"{name}: batch_size must be a whole number >= 1, got {batch_size!r}; "
                        f"pass e.g. batch_size=1024")
    k, batch_size = int(k), int(batch_size)
    real = _features(real, "real", name)
    fake = _features(fake, "fake", name)
    if real.shape[1] != fake.shape[1]:
        raise GansError(f"{name}: real features have dimension {real.shape[1]} but fake features "
                        f"{fake.shape[1]}; extract both with the same feature extractor and layer")
    if real.device != fake.device:
        raise GansError(f"{name}: real features are on {real.device} but fake features on "
                        f"{fake.device}; move both to one device")
    for label, feats, need in (("real", real, k + 1),
                               ("fake", fake, k + 1 if fake_needs_radii else 1)):
        if len(feats) < need:
            why = f"k+1 = {need} for k={k} nearest neighbours" if need > 1 else "at least 1"
            raise GansError(f"{name} needs at least {need} {label} samples ({why}), got "
                            f"{len(feats)}; pass more {label} samples or a smaller k")
    return real, fake


def _features(x, label, name) -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise GansError(f"{name}: {label} features must be a torch.Tensor or numpy array of shape "
                        f"(N, D), got {type(x).__name__}")
    if x.dim() != 2:
        raise GansError(f"{name}: {label} features must have shape (N, D), got "
                        f"{tuple(x.shape)}; flatten each sample's features to one row")
    if x.is_complex():
        raise GansError(f"{name}: {label} features must be real numbers, got {x.dtype}")
    x = x.detach().to(torch.float64)
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise GansError(f"{name}: {bad} {label} feature rows hold NaN or inf; "
                        f"drop them or fix the feature extraction")
    return x

