"""Statistics of the report, on ``scipy.stats``: t-based 95 % CIs, Welch's t-test and the CI of a
difference of means, Hedges' g, one-sample equivalence (TOST), Holm's step-down adjustment, and the
prediction interval of one new value with a point's rank among the values.

Undefined quantities are NaN, never an exception, so a table with one run in a cell still
prints (as ``NaN``) and a missing cell has n = 0. Every test here is undefined (NaN) with fewer
than 2 values in a sample and when the standard error is 0 (constant samples): scipy would
return an infinite t there, which says more than three equal accuracies can. A constant sample
is instead judged by the sign test, which needs no spread: its equivalence (``tost``) and its
confidence interval (``summarize``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy import stats as scipy_stats

CONFIDENCE = 0.95


def _values(values) -> np.ndarray:
    """The values as a float array, NaNs dropped."""
    array = np.asarray(values, dtype=float).ravel()
    return array[~np.isnan(array)]


def _constant(array: np.ndarray) -> bool:
    """All values equal (compared exactly: the mean of equal floats can be an ulp off)."""
    return array.size > 0 and array.max() == array.min()


# ---------------------------------------------------------------- one sample


@dataclass(frozen=True)
class Summary:
    """n values summarised: mean, sample std (ddof=1) and the 95 % CI of the mean."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


def summarize(values) -> Summary:
    """Mean, std and t-based 95 % confidence interval of the values (NaNs dropped).

    Formula: std = sqrt(sum((x - mean)^2) / (n - 1)) and
    CI = mean ± t_{0.975, n-1} * std / sqrt(n), with t the Student quantile
    (``scipy.stats.t.interval``).

    At n = 1 the std and the CI are undefined: NaN (the mean is the value).
    At n = 0 everything is NaN. With std = 0 (n >= 2 equal values: every run of a collapsed
    model at exactly chance, say) the t-interval has zero width whatever n is; the CI is then the
    sign test's distribution-free interval of the median, [min, max] = [mean, mean], whose
    coverage 1 - 2 * 0.5^n reaches 95 % from n = 6 (96.9 %). With 2 to 5 equal values no 95 %
    interval exists: NaN.
    """
    array = _values(values)
    n = int(array.size)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(array.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    if _constant(array):
        bound = mean if 1 - 2 * 0.5 ** n >= CONFIDENCE else math.nan
        return Summary(n, mean, 0.0, bound, bound)
    std = float(array.std(ddof=1))
    low, high = scipy_stats.t.interval(CONFIDENCE, n - 1, loc=mean, scale=float(scipy_stats.sem(array)))
    return Summary(n, mean, std, float(low), float(high))


@dataclass(frozen=True)
class Equivalence:
    """Two one-sided t-tests (TOST) of a mean against an interval [low, high].

    Attributes:
        p_low: p of H0: mu <= low (one-sided, alternative mu > low).
        p_high: p of H0: mu >= high (one-sided, alternative mu < high).
        p_value: max(p_low, p_high); below alpha, the mean lies within (low, high) at level alpha.
    """

    p_low: float
    p_high: float
    p_value: float
    test: str = "t"  # "t", or "sign" for a constant sample


def tost(values, low: float, high: float) -> Equivalence:
    """Equivalence of the mean of ``values`` to the interval (low, high), by TOST (Schuirmann 1987).

    Formula: p_low = P(T_{n-1} >= (mean - low) / se), p_high = P(T_{n-1} <= (mean - high) / se),
    se = std / sqrt(n) (``scipy.stats.ttest_1samp`` with ``alternative="greater"`` and ``"less"``);
    p = max(p_low, p_high). TOST at level alpha rejects exactly when the (1 - 2 alpha) t-interval
    of the mean (90 % at alpha 0.05) lies inside (low, high).

    A constant sample (zero std: every run of a collapsed model at exactly chance, say) has no
    t; its two one-sided tests are exact sign tests on the median instead: with all n values
    above low, P(n of n above | median <= low) <= 0.5^n, so p_low = 0.5^n (1 when they are
    not above), and p_high likewise. That takes 5 equal values to reach p < 0.05, not 2.

    NaN (all three) with fewer than 2 values.
    """
    array = _values(values)
    if array.size < 2:
        return Equivalence(math.nan, math.nan, math.nan)
    if _constant(array):
        p_low, p_high = (0.5 ** array.size if inside else 1.0 for inside in (array[0] > low, array[0] < high))
        return Equivalence(p_low, p_high, max(p_low, p_high), test="sign")
    p_low = float(scipy_stats.ttest_1samp(array, low, alternative="greater").pvalue)
    p_high = float(scipy_stats.ttest_1samp(array, high, alternative="less").pvalue)
    return Equivalence(p_low, p_high, max(p_low, p_high))


# ---------------------------------------------------------------- two samples


@dataclass(frozen=True)
class Difference:
    """mean(a) - mean(b) with Welch's 95 % CI and two-sided p, and Hedges' g.

    Attributes:
        n_a, n_b: values in each sample (NaNs dropped).
        difference: mean_a - mean_b; NaN when a sample is empty.
        ci_low, ci_high: Welch's 95 % CI of the difference; NaN when the test is.
        p_value: Welch's two-sided p; NaN with n < 2 on a side or se = 0.
        df: Welch-Satterthwaite degrees of freedom; NaN when the test is.
        hedges_g: ``hedges_g(a, b)``.
    """

    n_a: int
    n_b: int
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    df: float
    hedges_g: float


def difference_of_means(a, b) -> Difference:
    """Welch's comparison of two samples: difference of means, its 95 % CI, two-sided p, df, g.

    Formula: Welch's unequal-variance t-test of mean(a) = mean(b), two-sided:
    t = (mean_a - mean_b) / se with se = sqrt(s_a^2 / n_a + s_b^2 / n_b), degrees of freedom
    nu = se^4 / ((s_a^2 / n_a)^2 / (n_a - 1) + (s_b^2 / n_b)^2 / (n_b - 1)) (Welch-Satterthwaite),
    p = 2 * P(T_nu > |t|); the CI is (mean_a - mean_b) ± t_{0.975, nu} * se
    (``scipy.stats.ttest_ind(a, b, equal_var=False)`` and its ``confidence_interval(0.95)``).

    CI, p and df are NaN when either sample has fewer than 2 values or se = 0; the difference
    is NaN only when a sample is empty.
    """
    first, second = _values(a), _values(b)
    difference = float(first.mean() - second.mean()) if first.size and second.size else math.nan
    g = hedges_g(first, second)
    if first.size < 2 or second.size < 2 or (_constant(first) and _constant(second)):
        return Difference(first.size, second.size, difference, math.nan, math.nan, math.nan, math.nan, g)
    result = scipy_stats.ttest_ind(first, second, equal_var=False)
    low, high = result.confidence_interval(CONFIDENCE)
    return Difference(first.size, second.size, difference, float(low), float(high),
                      float(result.pvalue), float(result.df), g)


def hedges_g(a, b) -> float:
    """Hedges' g of mean(a) - mean(b): the standardised difference with small-sample correction.

    Formula (Hedges and Olkin 1985, ch. 5): g = J * (mean_a - mean_b) / s_pooled with
    s_pooled = sqrt(((n_a - 1) s_a^2 + (n_b - 1) s_b^2) / (n_a + n_b - 2)) and the exact
    correction J = Gamma(m / 2) / (sqrt(m / 2) * Gamma((m - 1) / 2)), m = n_a + n_b - 2
    (J = 0.798 at 3 + 3 values, about 1 - 3 / (4 m - 1) in general). The pooled std is the
    conventional scale of g even where the test is Welch's; g only describes the size.

    NaN when either sample has fewer than 2 values or s_pooled = 0.
    """
    first, second = _values(a), _values(b)
    if first.size < 2 or second.size < 2 or (_constant(first) and _constant(second)):
        return math.nan
    m = first.size + second.size - 2
    pooled = math.sqrt(((first.size - 1) * first.var(ddof=1) + (second.size - 1) * second.var(ddof=1)) / m)
    correction = math.exp(special.gammaln(m / 2) - special.gammaln((m - 1) / 2)) / math.sqrt(m / 2)
    return float(correction * (first.mean() - second.mean()) / pooled)


# ---------------------------------------------------------------- several tests


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), in the input's order.

    Formula: with the m defined p-values sorted, p_(1) <= ... <= p_(m),
    adjusted p_(i) = min(1, max_{j <= i} (m - j + 1) * p_(j)). Rejecting where the adjusted p
    is below alpha is Holm's procedure: it keeps the family-wise error rate at alpha under any
    dependence between the tests.

    NaN p-values (tests that could not be run) stay NaN and do not count in m, as R's
    ``p.adjust`` does; pass 1.0 instead to count an untested hypothesis in the family.
    An empty input gives an empty array.
    """
    p = np.asarray(p_values, dtype=float).ravel()
    adjusted = np.full(p.shape, math.nan)
    defined = np.flatnonzero(~np.isnan(p))
    order = defined[np.argsort(p[defined], kind="stable")]
    m = order.size
    scaled = (m - np.arange(m)) * p[order]
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


@dataclass(frozen=True)
class Prediction:
    """Where one new value should fall: mean ± t(0.975, n-1)·√(s²(1 + 1/n) + extra), the 95 %
    prediction interval of one more draw from the distribution of ``values``; ``extra`` is a
    variance added for a known source of spread the values do not hold."""

    n: int
    mean: float
    std: float
    low: float
    high: float


def prediction_interval(values, extra_variance: float = 0.0, level: float = 0.95) -> Prediction:
    """The prediction interval of one new value (NaN bounds below 2 values)."""
    array = _values(values)
    n = array.size
    if n < 2:
        return Prediction(n, float(array.mean()) if n else math.nan, math.nan, math.nan, math.nan)
    mean, std = float(array.mean()), float(array.std(ddof=1))
    half = scipy_stats.t.ppf(0.5 + level / 2, n - 1) * math.sqrt(std**2 * (1 + 1 / n) + extra_variance)
    return Prediction(n, mean, std, mean - half, mean + half)


def rank_below(values, point: float) -> float:
    """How many of ``values`` lie below ``point``, ties counted half: the point's rank among them."""
    array = _values(values)
    return float((array < point).sum() + 0.5 * (array == point).sum())
