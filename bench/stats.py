"""Statistics of the report: mean, sample std and a t-based 95 % CI, and Welch's t-test.

Undefined quantities are NaN, never an exception, so a table with one run in a cell still
prints (as ``NaN``) and a missing cell has n = 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """n values summarised: mean, sample std (ddof=1) and the 95 % CI of the mean."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float

    def contains(self, value: float) -> bool | None:
        """Whether ``value`` lies in [ci_low, ci_high]; None when the CI is undefined."""
        if math.isnan(self.ci_low):
            return None
        return self.ci_low <= value <= self.ci_high


def summarize(values) -> Summary:
    """Mean, std and t-based 95 % confidence interval of the values (NaNs dropped).

    Formula: std = sqrt(sum((x - mean)^2) / (n - 1)) and
    CI = mean ± t_{0.975, n-1} * std / sqrt(n), with t the Student quantile.

    At n = 1 the std and the CI are undefined: NaN (the mean is the value).
    At n = 0 everything is NaN.
    """
    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    n = int(array.size)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(array.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = float(array.std(ddof=1))
    half_width = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half_width, mean + half_width)


@dataclass(frozen=True)
class Comparison:
    """Two samples compared: difference of means (a - b) and Welch's two-sided p-value."""

    difference: float
    p_value: float


def welch(a, b) -> Comparison:
    """Welch's unequal-variance t-test of mean(a) = mean(b), two-sided.

    Formula: t = (mean_a - mean_b) / se with se = sqrt(s_a^2 / n_a + s_b^2 / n_b), degrees of
    freedom nu = se^4 / ((s_a^2 / n_a)^2 / (n_a - 1) + (s_b^2 / n_b)^2 / (n_b - 1))
    (Welch-Satterthwaite), p = 2 * P(T_nu > |t|).

    The p-value is NaN when either sample has fewer than 2 values (no variance) or when
    se = 0 (both samples constant); the difference is NaN only when a sample is empty.
    """
    first, second = summarize(a), summarize(b)
    difference = first.mean - second.mean
    if first.n < 2 or second.n < 2:
        return Comparison(difference, math.nan)
    share_a, share_b = first.std**2 / first.n, second.std**2 / second.n
    se = math.sqrt(share_a + share_b)
    if se == 0:
        return Comparison(difference, math.nan)
    dof = se**4 / (share_a**2 / (first.n - 1) + share_b**2 / (second.n - 1))
    p_value = 2 * float(scipy_stats.t.sf(abs(difference) / se, dof))
    return Comparison(difference, p_value)
