"""Measured association bias: WEAT's effect size on sentence embeddings, a bootstrap interval for a mean, and
the simplest mitigation, projecting a direction out of the embeddings.

**WEAT** (Caliskan et al., 2017) compares two sets of target embeddings X, Y (say, occupations) with two sets
of attribute embeddings A, B (male and female words). Each target w gets an association

    s(w, A, B) = mean_{a in A} cos(w, a) - mean_{b in B} cos(w, b)

and the effect size is a standardised difference of means (Cohen's d):

    d = (mean_{x in X} s(x, A, B) - mean_{y in Y} s(y, A, B)) / std_{w in X u Y} s(w, A, B)

with the sample standard deviation (n - 1 in the denominator). SEAT (May et al., 2019) puts the words in
templated sentences ("This is a nurse.") to apply it to sentence encoders.

**Percentile bootstrap** for the mean of n values: resample the values with replacement, compute the mean of
each resample, and take the (1 - level)/2 and (1 + level)/2 quantiles of those means.
"""
from __future__ import annotations

import torch

from llmlab import validate

# SEAT-style word lists (English, with the Chinese used for SmolLM2's pronoun test). Occupations that are
# stereotypically male / female in the sense of the 2017-2019 bias literature, not a statement about people.
MALE_OCCUPATIONS = {"engineer": "工程师", "carpenter": "木匠", "mechanic": "机修工", "pilot": "飞行员",
                    "programmer": "程序员", "surgeon": "外科医生", "firefighter": "消防员", "plumber": "水管工"}
FEMALE_OCCUPATIONS = {"nurse": "护士", "secretary": "秘书", "receptionist": "前台接待", "librarian": "图书管理员",
                      "housekeeper": "保姆", "dancer": "舞蹈演员", "hairdresser": "美发师", "nanny": "育儿嫂"}
MALE_WORDS = ["man", "boy", "father", "son", "brother", "husband", "uncle", "gentleman"]
FEMALE_WORDS = ["woman", "girl", "mother", "daughter", "sister", "wife", "aunt", "lady"]


def _embeddings(name: str, x: torch.Tensor, D: int | None = None) -> torch.Tensor:
    validate.tensor(name, x, ndim=2, floating=True, finite=True)
    if x.shape[0] < 1 or (D is not None and x.shape[1] != D):
        raise ValueError(f"{name} must have shape (n >= 1, D{' = ' + str(D) if D else ''}), got {tuple(x.shape)}")
    return x


def association(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """s(w, A, B) for every row w of W (n, D): mean cosine with A's rows minus mean cosine with B's -> (n,)."""
    D = _embeddings("W", W).shape[1]
    _embeddings("A", A, D), _embeddings("B", B, D)
    return _association(W, A, B)


def _association(W, A, B):
    n = torch.nn.functional.normalize
    W, A, B = n(W, dim=-1), n(A, dim=-1), n(B, dim=-1)
    return (W @ A.T).mean(1) - (W @ B.T).mean(1)


def weat_effect_size(X: torch.Tensor, Y: torch.Tensor, A: torch.Tensor, B: torch.Tensor) -> float:
    """WEAT's effect size d of targets X (nx, D), Y (ny, D) against attributes A (na, D), B (nb, D), as a float;
    cosine similarities (the rows need not be normalised), sample standard deviation over X and Y together.
    Needs nx + ny >= 2."""
    D = _embeddings("X", X).shape[1]
    for name, t in (("Y", Y), ("A", A), ("B", B)):
        _embeddings(name, t, D)
    if X.shape[0] + Y.shape[0] < 2:
        raise ValueError("X and Y must hold at least two targets together (a standard deviation needs two)")
    sx, sy = _association(X, A, B), _association(Y, A, B)
    return ((sx.mean() - sy.mean()) / torch.cat([sx, sy]).std()).item()


def bootstrap_ci(values: torch.Tensor, n: int, seed: int, level: float = 0.95) -> torch.Tensor:
    """Percentile bootstrap interval (lo, hi) for the mean of ``values`` (N,): a tensor (2,) in values' dtype.

    The resamples are drawn in one call, ``torch.randint(0, N, (n, N), generator=g)`` with
    ``g = torch.Generator().manual_seed(seed)`` (row r = resample r), and the interval is
    ``torch.quantile(means, [(1 - level) / 2, (1 + level) / 2])`` (linear interpolation).
    """
    validate.tensor("values", values, ndim=1, floating=True, finite=True)
    if values.shape[0] < 1:
        raise ValueError("values is empty: need at least one value")
    n = validate.size("n", n)
    seed = validate.integer("seed", seed, 0)
    level = validate.probability("level", level, allow_zero=False, allow_one=False)
    g = torch.Generator().manual_seed(seed)
    N = values.shape[0]
    idx = torch.randint(0, N, (n, N), generator=g)
    means = values.cpu()[idx].mean(1)
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=values.dtype)
    return torch.quantile(means, q).to(values.device)


def direction(male: torch.Tensor, female: torch.Tensor) -> torch.Tensor:
    """A unit 'gender direction': the mean of the differences of paired embeddings male[i] - female[i] (n, D),
    normalised -> (D,). (Bolukbasi et al. take the first principal component of the differences; with pairs of
    unit vectors the mean is close to it.)"""
    D = _embeddings("male", male).shape[1]
    _embeddings("female", female, D)
    if male.shape != female.shape:
        raise ValueError(f"male and female must be paired, the same shape: {tuple(male.shape)} vs {tuple(female.shape)}")
    d = (male - female).mean(0)
    if not bool(d.norm() > 0):
        raise ValueError("male and female are identical: there is no direction between them")
    return d / d.norm()


def project_out(X: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """X (n, D) with its component along the direction u (D,) removed: X - (X u^) u^ with u^ = u / |u|."""
    D = _embeddings("X", X).shape[1]
    validate.tensor("u", u, ndim=1, floating=True, finite=True)
    if u.shape[0] != D or not bool(u.norm() > 0):
        raise ValueError(f"u must be a non-zero vector of length {D}, got shape {tuple(u.shape)}")
    u = (u / u.norm()).to(X.dtype)
    return X - (X @ u)[:, None] * u
