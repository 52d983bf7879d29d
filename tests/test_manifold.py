"""gans.evaluation.manifold against a plain brute-force reference (full scipy distance matrix, explicit loops)."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from gans.errors import GansError
from gans.evaluation.manifold import density_coverage, precision_recall


@pytest.fixture(autouse=True)
def _one_thread():
    """The matrices here are tiny: a second thread only adds OpenMP hand-offs, which take
    milliseconds per torch.cdist call on a busy machine (torch-fidelity makes hundreds)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- brute-force reference: every distance, every loop spelled out -----------------------------

def ref_radii(x, k):
    """Distance from each sample to its k-th nearest other sample of the same set."""
    d = cdist(x, x)
    n = len(x)
    radii = np.empty(n)
    for i in range(n):
        others = sorted(d[i, j] for j in range(n) if j != i)
        radii[i] = others[k - 1]
    return radii


def ref_precision_recall(real, fake, k):
    """Kynkäänniemi et al. 2019: closed balls, distance <= radius."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    r_real, r_fake = ref_radii(real, k), ref_radii(fake, k)
    d = cdist(real, fake)  # d[i, j] = |real_i - fake_j|
    n, m = len(real), len(fake)
    fakes_in = 0
    for j in range(m):
        if any(d[i, j] <= r_real[i] for i in range(n)):
            fakes_in += 1
    reals_in = 0
    for i in range(n):
        if any(d[i, j] <= r_fake[j] for j in range(m)):
            reals_in += 1
    return {"precision": fakes_in / m, "recall": reals_in / n}


def ref_density_coverage(real, fake, k):
    """Naeem et al. 2020 as in their code (clovaai/generative-evaluation-prdc): open balls, <."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    r_real = ref_radii(real, k)
    d = cdist(real, fake)
    n, m = len(real), len(fake)
    in_balls = 0
    covered = 0
    for i in range(n):
        holds = 0
        for j in range(m):
            if d[i, j] < r_real[i]:
                holds += 1
        in_balls += holds
        covered += holds > 0
    return {"density": in_balls / (k * m), "coverage": covered / n}


def sets(seed, n, m, dim, dtype=torch.float64):
    """Real ~ N(0, I); fake shifted and widened, so every metric lands strictly inside (0, 1)."""
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(n, dim, generator=g, dtype=torch.float64)
    fake = 1.3 * torch.randn(m, dim, generator=g, dtype=torch.float64) + 0.4
    return real.to(dtype), fake.to(dtype)


CASES = [  # seed, n real, m fake, dim, batch_size, dtype
    (0, 120, 90, 8, 16, torch.float64),
    (1, 90, 150, 16, 7, torch.float64),
    (2, 200, 200, 12, 64, torch.float32),
    (3, 60, 75, 8, 1024, torch.float64),
    (4, 101, 67, 10, 1, torch.float32),
]


# --- equality with the reference ----------------------------------------------------------------

@pytest.mark.parametrize("seed,n,m,dim,batch_size,dtype", CASES)
@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_recall_matches_brute_force(seed, n, m, dim, batch_size, dtype, k):
    real, fake = sets(seed, n, m, dim, dtype)
    got = precision_recall(real, fake, k=k, batch_size=batch_size)
    want = ref_precision_recall(real.double().numpy(), fake.double().numpy(), k)
    assert got == want  # exact: both are count / size
    assert 0 < got["precision"] < 1 and 0 < got["recall"] <= 1


@pytest.mark.parametrize("seed,n,m,dim,batch_size,dtype", CASES)
@pytest.mark.parametrize("k", [1, 3, 5])
def test_density_coverage_matches_brute_force(seed, n, m, dim, batch_size, dtype, k):
    real, fake = sets(seed, n, m, dim, dtype)
    got = density_coverage(real, fake, k=k, batch_size=batch_size)
    want = ref_density_coverage(real.double().numpy(), fake.double().numpy(), k)
    assert got == want
    assert 0 < got["density"] and 0 < got["coverage"] < 1


def test_defaults_are_k3_and_k5():
    real, fake = sets(5, 80, 70, 8)
    assert precision_recall(real, fake) == ref_precision_recall(real.numpy(), fake.numpy(), 3)
    assert density_coverage(real, fake) == ref_density_coverage(real.numpy(), fake.numpy(), 5)


def test_torch_fidelity_raw_output_is_the_float32_rounded_share():
    """What precision_recall corrects: torch-fidelity averages in float32."""
    from torch_fidelity.metric_prc import prc_features_to_metric

    real, fake = sets(6, 130, 110, 8)
    raw = prc_features_to_metric(fake, real, prc_neighborhood=3, prc_batch_size=32,
                                 save_cpu_ram=True, verbose=False)
    want = ref_precision_recall(real.numpy(), fake.numpy(), 3)
    for key in ("precision", "recall"):
        assert raw[key] == pytest.approx(want[key], abs=1e-6)
        assert raw[key] == float(np.float32(want[key]))
    assert precision_recall(real, fake, batch_size=32) == want


def test_numpy_input_is_accepted():
    real, fake = sets(7, 70, 60, 8)
    assert precision_recall(real.numpy(), fake.numpy()) == precision_recall(real, fake)
    assert density_coverage(real.numpy(), fake.numpy()) == density_coverage(real, fake)


# --- known values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("k,batch_size,shuffle", [(3, 16, False), (5, 7, False), (5, 1024, True),
                                                  (1, 50, True)])
def test_identical_sets(k, batch_size, shuffle):
    real, _ = sets(8, 150, 1, 12)
    fake = real[torch.randperm(150, generator=torch.Generator().manual_seed(0))] if shuffle \
        else real.clone()
    assert precision_recall(real, fake, k=k, batch_size=batch_size) == \
        {"precision": 1.0, "recall": 1.0}
    # Each open ball holds its centre and the k-1 nearest others (the k-th sits on the boundary):
    # k fakes per ball, density exactly k*N / (k*N) = 1. Closed balls would give (k+1)/k.
    assert density_coverage(real, fake, k=k, batch_size=batch_size) == \
        {"density": 1.0, "coverage": 1.0}
    assert ref_density_coverage(real.numpy(), fake.numpy(), k) == {"density": 1.0, "coverage": 1.0}


def test_disjoint_far_apart_sets_score_zero():
    real, fake = sets(9, 100, 80, 8)
    fake = fake + 1000.0
    assert precision_recall(real, fake, batch_size=32) == {"precision": 0.0, "recall": 0.0}
    assert density_coverage(real, fake, batch_size=32) == {"density": 0.0, "coverage": 0.0}


def test_mode_collapse_onto_one_real_sample():
    real, _ = sets(10, 150, 1, 8)
    point = real[7] + 1e-3
    fake = point.repeat(100, 1)
    pr = precision_recall(real, fake, batch_size=32)
    dc = density_coverage(real, fake, batch_size=32)
    assert pr == ref_precision_recall(real.numpy(), fake.numpy(), 3)
    assert dc == ref_density_coverage(real.numpy(), fake.numpy(), 5)
    # Every fake is realistic, but the fake balls have radius 0 and cover no real sample.
    assert pr == {"precision": 1.0, "recall": 0.0}
    # Only the few real balls around real[7] hold the point: coverage a few / N.
    assert 1 / 150 <= dc["coverage"] <= 6 / 150
    # Density counts each fake once per ball holding it: (balls holding the point) / k.
    assert dc["density"] == pytest.approx(dc["coverage"] * 150 / 5)


# --- user errors ----------------------------------------------------------------------------------

def test_too_few_samples():
    real, fake = sets(11, 20, 20, 8)
    with pytest.raises(GansError, match=r"at least 4 real samples"):
        precision_recall(real[:3], fake)
    with pytest.raises(GansError, match=r"at least 4 fake samples"):
        precision_recall(real, fake[:3])
    with pytest.raises(GansError, match=r"at least 6 real samples"):
        density_coverage(real[:5], fake)
    with pytest.raises(GansError, match=r"at least 1 fake samples"):
        density_coverage(real, fake[:0])
    # Density/coverage use real balls only: a handful of fakes is enough.
    assert density_coverage(real[:6], fake[:1]) == ref_density_coverage(real[:6].numpy(),
                                                                         fake[:1].numpy(), 5)
    assert precision_recall(real[:4], fake[:4]) == ref_precision_recall(real[:4].numpy(),
                                                                        fake[:4].numpy(), 3)


@pytest.mark.parametrize("call,match", [
    (lambda r, f: precision_recall(r, f[:, :4]), "dimension 8 but fake features 4"),
    (lambda r, f: density_coverage(r[0], f), r"shape \(N, D\)"),
    (lambda r, f: density_coverage(r.tolist(), f), "torch.Tensor or numpy array"),
    (lambda r, f: precision_recall(r, f, k=0), "k must be"),
    (lambda r, f: density_coverage(r, f, batch_size=0), "batch_size must be"),
    (lambda r, f: density_coverage(r, f.index_fill(0, torch.tensor([2]), float("nan"))),
     "1 fake feature rows hold NaN"),
])
def test_bad_input(call, match):
    real, fake = sets(12, 20, 20, 8)
    with pytest.raises(GansError, match=match) as err:
        call(real, fake)
    assert "\n" not in str(err.value)


# --- exact ties -----------------------------------------------------------------------------------

@pytest.mark.parametrize("copies,k", [(3, 1), (3, 3), (3, 5), (20, 5), (20, 30)])
def test_duplicated_samples_match_brute_force(copies, k):
    """Duplicates put fakes exactly on ball boundaries, and with many copies a sample's k-th
    neighbour ties with more than the neighbours fetched first (the whole-row fallback)."""
    g = torch.Generator().manual_seed(copies + k)
    base = torch.randn(12, 9, generator=g, dtype=torch.float64) * 3
    real = base.repeat(copies, 1)[torch.randperm(12 * copies, generator=g)]
    real = torch.cat([real, torch.randn(40, 9, generator=g, dtype=torch.float64) * 3])
    fake = torch.cat([real[torch.randperm(len(real), generator=g)[:50]],
                      torch.randn(30, 9, generator=g, dtype=torch.float64) * 3])
    want_pr = ref_precision_recall(real.numpy(), fake.numpy(), k)
    want_dc = ref_density_coverage(real.numpy(), fake.numpy(), k)
    assert density_coverage(real, fake, k=k, batch_size=13) == want_dc
    assert precision_recall(real, fake, k=k, batch_size=13) == want_pr


def test_lattice_points_match_brute_force():
    """Integer coordinates: many distinct pairs at exactly equal distances."""
    g = torch.Generator().manual_seed(13)
    real = torch.randint(0, 3, (150, 4), generator=g).double()
    fake = torch.randint(0, 3, (120, 4), generator=g).double() + 0.5 * (torch.rand(120, 1, generator=g) < 0.3)
    for k in (1, 5, 20):
        assert density_coverage(real, fake, k=k, batch_size=32) == \
            ref_density_coverage(real.numpy(), fake.numpy(), k)
        assert precision_recall(real, fake, k=k, batch_size=32) == \
            ref_precision_recall(real.numpy(), fake.numpy(), k)
