"""The 95% intervals against published values: Wilson (Newcombe 1998) and Student's t tables."""

import math

import numpy as np
import pytest

from numpy_cnn.train.metrics import format_table1, per_class_table, t_interval, t_quantile, wilson_interval


# Newcombe, "Two-sided confidence intervals for the single proportion", Stat. Med. 17 (1998),
# Table II, method 3 (Wilson score, no continuity correction), to the 4 decimals it prints.
@pytest.mark.parametrize("k, n, lo, hi", [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605),
                                          (0, 20, 0.0000, 0.1611), (1, 29, 0.0061, 0.1718),
                                          (29, 29, 0.8830, 1.0000)])
def test_wilson_matches_newcombe(k, n, lo, hi):
    got = wilson_interval(k, n)
    assert got[0] == pytest.approx(lo, abs=5e-5) and got[1] == pytest.approx(hi, abs=5e-5)


def test_135_test_images_cannot_tell_35_from_40_percent():
    lo, hi = wilson_interval(48, 135)   # 35.6%, the paper's figure
    assert lo < 0.30 and hi > 0.40 and hi - lo > 0.15


# Two-sided 95% (and 99%) critical values of Student's t, as printed in every table.
@pytest.mark.parametrize("p, df, t", [(0.975, 1, 12.7062), (0.975, 2, 4.3027), (0.975, 4, 2.7764),
                                      (0.975, 9, 2.2622), (0.975, 29, 2.0452), (0.975, 120, 1.9799),
                                      (0.995, 4, 4.6041), (0.95, 10, 1.8125)])
def test_t_quantile_matches_the_tables(p, df, t):
    assert t_quantile(p, df) == pytest.approx(t, abs=5e-5)
    assert t_quantile(1 - p, df) == pytest.approx(-t, abs=5e-5)


def test_t_quantile_closed_forms():
    # df = 1 is the Cauchy distribution: tan(pi (p - 1/2)); df = 2: (2p - 1) sqrt(2 / (4p (1 - p))).
    for p in (0.6, 0.9, 0.975, 0.999):
        assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-10)
        assert t_quantile(p, 2) == pytest.approx((2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p))), rel=1e-10)


def test_t_interval_of_five_folds():
    acc = [0.30, 0.35, 0.40, 0.33, 0.37]
    mean, sd = np.mean(acc), np.std(acc, ddof=1)
    lo, hi = t_interval(acc)
    assert (lo + hi) / 2 == pytest.approx(mean)
    assert (hi - lo) / 2 == pytest.approx(2.7764451 * sd / math.sqrt(5), rel=1e-6)


def test_table1_overall_row_carries_the_wilson_interval():
    rows = per_class_table(np.array([[3, 1], [2, 4]]), ["a", "b"])
    assert rows[-1]["ci95"] == pytest.approx(list(wilson_interval(7, 10)))
    assert "| **Overall** | 10 | 7 | 70.00% (95% CI 39.7\u201389.2%) |" in format_table1(rows)
    assert per_class_table(np.zeros((2, 2), int), ["a", "b"])[-1]["ci95"] is None
