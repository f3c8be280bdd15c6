"""Specification of ``bench.analysis.verdicts`` (and of the scipy-based helpers it takes from ``bench.analysis.stats``).

Table 4 cells: reproduced, differs or can't tell against the published value, with a margin;
claims of the report: holds, contradicted or can't tell, with Holm's adjustment per dataset.
Inputs are tiny hand-made frames; every expected number is computed here with numpy and
scipy from the inputs, not with ``bench.analysis.stats``. No TensorFlow.
"""
import math
import tomllib

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from bench.analysis import verdicts
from bench.analysis.claims import (
    CLAIMS_FILE,
    KINDS,
    METRICS,
    Margins,
    Published,
    PublishedValue,
    load_claims,
    parse_claims,
)
from bench.analysis.stats import Equivalence, difference_of_means, hedges_g, holm, tost
from bench.analysis.verdicts import CANT_TELL, CONTRADICTED, DIFFERS, HOLDS, REPRODUCED

# The names the registry and bench.data.kinds accept (models.registry.names(), bench.data.kinds.NAMES).
MODELS = ("mlp", "cnn", "mobilenet", "fishnet55", "fishnet77", "fishnet99", "fishnet150", "fishnet201")
DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "synthetic", "fashion_mnist_sample")
DENSE = {"head": "dense", "stem": "concise"}
CONV = {"head": "conv", "stem": "concise"}


def run(model, accuracy, *, options=None, dataset="cifar10", status="ok", seed=0, ms=1.0, params=1000,
        flops=1000, classes=10, setup="table4"):
    """One line of the runs frame; a run that is not ok has no accuracy."""
    return {"model": model, "options": options or {}, "dataset": dataset, "status": status,
            "accuracy": accuracy if status == "ok" else math.nan, "seed": seed, "ms_per_image": ms,
            "params_total": params, "flops_per_image": flops, "num_classes": classes, "setup": setup}


def runs(model, accuracies, **fields):
    return [run(model, a, seed=seed, **fields) for seed, a in enumerate(accuracies)]


def frame(*groups):
    return pd.DataFrame([line for group in groups for line in group])


def claims_from(text, models=MODELS, datasets=DATASETS):
    return parse_claims(tomllib.loads(text), models=models, datasets=datasets)


def claim(kind="greater", metric="accuracy", rows='[{model = "fishnet55", options = {head = "dense"}}]',
          others='than = [{model = "mlp"}]', datasets='["cifar10"]', claim_id="c", extra=""):
    """The TOML of one claim."""
    metric_line = f'metric = "{metric}"' if metric else ""
    return f"""
[[claims]]
id = "{claim_id}"
kind = "{kind}"
section = "IV.B"
quote = "the report's words"
{metric_line}
datasets = {datasets}
rows = {rows}
{others}
{extra}
"""


def evaluate(text, run_frame):
    """(comparisons, claim verdicts) of the claims in ``text`` on the runs."""
    parsed = claims_from("schema_version = 1\n" + text).claims
    comparisons = verdicts.claim_comparisons(run_frame, parsed)
    return comparisons, verdicts.claim_verdicts(comparisons, parsed)


def published(model="mlp", dataset="fashion_mnist", value="86.5", options="", estimand="mean", protocol="paper",
              test_images="all"):
    """A published table of one accuracy; by default a mean of runs (judged by our mean, TOST)."""
    pairs = dict(pair.split("=", 1) for pair in options.split(";") if pair)
    return Published((PublishedValue(model, dataset, "accuracy", value, pairs, estimand, test_images, protocol,
                                     "a test"),))


# ---------------------------------------------------------------- stats on scipy


def test_difference_of_means_is_welch_with_its_ci():
    a, b = [90.1, 91.0, 89.7, 90.6], [86.0, 87.5, 85.9]
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
    half = scipy_stats.t.ppf(0.975, df) * se
    result = difference_of_means(a, b)
    assert result.difference == pytest.approx(np.mean(a) - np.mean(b))
    assert (result.ci_low, result.ci_high) == pytest.approx((result.difference - half, result.difference + half))
    assert result.df == pytest.approx(df)
    assert result.p_value == pytest.approx(2 * scipy_stats.t.sf(result.difference / se, df))
    assert math.isnan(difference_of_means([1.0], b).ci_low)
    assert math.isnan(difference_of_means([10.0, 10.0], [10.0, 10.0]).p_value)


def test_hedges_g_is_the_corrected_pooled_standardised_difference():
    a, b = [70.0, 71.0, 72.0], [20.0, 22.0, 21.0]
    pooled = math.sqrt((2 * np.var(a, ddof=1) + 2 * np.var(b, ddof=1)) / 4)
    approximate = (1 - 3 / (4 * 4 - 1)) * (np.mean(a) - np.mean(b)) / pooled  # Hedges' approximation of J
    assert hedges_g(a, b) == pytest.approx(approximate, rel=0.005)
    assert hedges_g(b, a) == pytest.approx(-hedges_g(a, b))
    assert math.isnan(hedges_g([1.0], b))


def test_tost_is_the_larger_of_two_one_sided_t_tests():
    values = [86.3, 86.6, 86.5, 86.7]
    se = np.std(values, ddof=1) / 2
    p_low = scipy_stats.t.sf((np.mean(values) - 85.5) / se, 3)
    p_high = scipy_stats.t.cdf((np.mean(values) - 87.5) / se, 3)
    result = tost(values, 85.5, 87.5)
    assert (result.p_low, result.p_high, result.p_value) == pytest.approx((p_low, p_high, max(p_low, p_high)))
    assert math.isnan(tost([86.5], 85.5, 87.5).p_value)


def test_tost_of_equal_values_is_two_sign_tests_on_the_median():
    assert tost([86.5] * 2, 85.5, 87.5) == Equivalence(0.25, 0.25, 0.25, test="sign")  # no t without spread
    assert tost([10.0] * 5, 9.1, 11.1).p_value == 0.5 ** 5 < 0.05  # five equal runs inside the margin
    assert tost([10.0] * 6, 10.5, 12.5) == Equivalence(1.0, 0.5 ** 6, 1.0, test="sign")  # below the interval


def test_holm_on_the_wikipedia_example():
    # Wikipedia, "Holm–Bonferroni method", Example: four hypotheses at alpha = 0.05 with
    # p1..p4 = 0.01, 0.04, 0.03, 0.005; H1 and H4 are rejected, H2 and H3 are not.
    # Adjusted (sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, running max): R's
    # p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02.
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert list(adjusted < 0.05) == [True, False, False, True]


def test_holm_leaves_untested_hypotheses_out_and_caps_at_one():
    adjusted = holm([0.01, math.nan, 0.02])
    assert adjusted[[0, 2]] == pytest.approx([0.02, 0.02]) and math.isnan(adjusted[1])
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])
    assert holm([]).size == 0


# ---------------------------------------------------------------- Table 4 cells


def test_a_sample_centred_on_the_published_value_with_small_spread_is_reproduced():
    result = verdicts.judge_cell([86.4, 86.5, 86.6], 86.5, margin=1.0)
    assert result.verdict == REPRODUCED and result.tost_p < 0.05


def test_a_sample_far_from_the_published_value_differs():
    result = verdicts.judge_cell([77.0, 78.0, 76.0], 86.5, margin=1.0)
    assert result.verdict == DIFFERS


def test_two_runs_with_large_spread_cannot_tell():
    result = verdicts.judge_cell([80.0, 93.0], 86.5, margin=1.0)
    assert result.verdict == CANT_TELL and result.tost_p > 0.05


def test_runs_all_at_exactly_chance_reproduce_a_published_chance_from_five_runs_on():
    # a collapsed MLP predicts one class: exactly 10.00 % of CIFAR-10's balanced test set every time
    three, six = verdicts.judge_cell([10.0] * 3, 10.1, margin=1.0), verdicts.judge_cell([10.0] * 6, 10.1, margin=1.0)
    assert (three.verdict, three.tost_p) == (CANT_TELL, 0.125)
    assert (six.verdict, six.tost_p) == (REPRODUCED, 0.5 ** 6) and "every run equal: sign-test TOST p" in six.why


def test_runs_all_equal_differ_from_a_published_value_only_from_six_runs_on():
    # the t-interval of equal runs has zero width at any n; the sign test's interval of the
    # median, [min, max], covers 1 - 2 * 0.5^n: 93.75 % at five runs, 96.9 % at six
    five, six = verdicts.judge_cell([10.0] * 5, 86.5, margin=1.0), verdicts.judge_cell([10.0] * 6, 86.5, margin=1.0)
    assert five.verdict == CANT_TELL and "5 equal runs give no 95 % CI, 6 do" in five.why
    assert verdicts.judge_cell([10.0] * 2, 86.5, margin=1.0).verdict == CANT_TELL
    assert six.verdict == DIFFERS and "outside the CI ± margin [9.00, 11.00]" in six.why


def test_one_run_cannot_tell_even_on_the_published_value():
    result = verdicts.judge_cell([86.5], 86.5, margin=1.0)
    assert result.verdict == CANT_TELL and math.isnan(result.tost_p)


def test_the_default_margin_is_one_point_or_half_the_last_printed_digit():
    assert verdicts.default_margin("86.5") == 1.0  # max(1, 0.05)
    assert verdicts.default_margin("86") == 1.0  # max(1, 0.5)
    assert verdicts.default_margin("86.0") == 1.0
    assert verdicts.margin_for("mlp", "fashion_mnist", "86.5") == (1.0, "default: max(1 pp, half the last digit of 86.5)")


def test_a_cell_reports_its_margin_and_verdict():
    cells = verdicts.verdict_cells(frame(runs("mlp", [86.4, 86.5, 86.6], dataset="fashion_mnist")), published())
    [cell] = cells.to_dict("records")
    assert (cell["verdict"], cell["margin"], cell["n_ok"], cell["n_planned"]) == (REPRODUCED, 1.0, 3, 3)
    assert cell["margin_source"] == "default: max(1 pp, half the last digit of 86.5)"
    assert cell["published"] == 86.5 and cell["difference"] == pytest.approx(0.0)
    assert list(cells.columns) == list(verdicts.CELL_COLUMNS)


def test_a_margin_from_the_claims_file_is_used_and_reported():
    margins = claims_from('schema_version = 1\nclaims = []\n[margins]\n"mlp/fashion_mnist" = 10.0\n').margins
    run_frame = frame(runs("mlp", [78.9, 79.0, 79.1], dataset="fashion_mnist"))
    [by_default] = verdicts.verdict_cells(run_frame, published()).to_dict("records")
    [overridden] = verdicts.verdict_cells(run_frame, published(), margins).to_dict("records")
    assert by_default["verdict"] == DIFFERS
    assert (overridden["verdict"], overridden["margin"]) == (REPRODUCED, 10.0)
    assert overridden["margin_source"] == "claims.toml [margins] mlp/fashion_mnist"
    default = claims_from('schema_version = 1\nclaims = []\n[margins]\ndefault = 2.5\n').margins
    assert verdicts.margin_for("cnn", "cifar10", "37.3", default) == (2.5, "claims.toml [margins] default")


def test_the_published_value_belongs_to_the_row_with_the_reports_options():
    run_frame = frame(runs("fishnet55", [70.0, 70.1, 70.2], options=DENSE),
                      runs("fishnet55", [30.0, 31.0, 32.0], options=CONV))
    cells = verdicts.verdict_cells(run_frame, published("fishnet55", "cifar10", "70.1", "head=dense"))
    by_head = {('"dense"' in line["options"]): line for line in cells.to_dict("records")}
    assert by_head[True]["verdict"] == REPRODUCED
    assert math.isnan(by_head[False]["published"]) and by_head[False]["verdict"] == CANT_TELL


def test_a_published_cell_without_runs_is_listed_with_n_zero():
    run_frame = frame(runs("cnn", [80.0, 81.0], dataset="fashion_mnist"))
    cells = verdicts.verdict_cells(run_frame, published())
    mlp = cells[cells["model"] == "mlp"].iloc[0]
    assert (mlp["n_planned"], mlp["verdict"]) == (0, CANT_TELL)


def test_failed_runs_count_as_planned_and_may_not_change_a_clear_verdict():
    ok = [60.0, 60.5, 61.0, 60.2, 60.8, 60.4, 60.6, 60.3]
    run_frame = frame(runs("mlp", ok, dataset="fashion_mnist"), [run("mlp", None, dataset="fashion_mnist", status="failed")])
    [cell] = verdicts.verdict_cells(run_frame, published()).to_dict("records")
    assert (cell["n_ok"], cell["n_planned"], cell["not_ok"]) == (8, 9, "1 failed")
    assert cell["verdict"] == DIFFERS
    assert cell["could_change"] is False  # even at chance (10 %) the 9 runs differ from 86.5
    assert cell["if_imputed"] == "lowest ok 60.00: differs; highest ok 61.00: differs; chance 10.00: differs"


def test_a_missing_run_could_change_the_verdict_when_few_runs_are_ok():
    run_frame = frame(runs("mlp", [60.0, 61.0, 62.0], dataset="fashion_mnist"),
                      [run("mlp", None, dataset="fashion_mnist", status="diverged")])
    [cell] = verdicts.verdict_cells(run_frame, published()).to_dict("records")
    assert (cell["n_ok"], cell["n_planned"], cell["verdict"]) == (3, 4, DIFFERS)
    assert cell["could_change"] is True  # one run at chance widens the CI over 86.5
    assert cell["if_imputed"] == "lowest ok 60.00: differs; highest ok 62.00: differs; chance 10.00: can't tell"


def test_a_cell_whose_every_run_diverged_at_the_reports_input_keeps_the_reports_value():
    # the CNN on raw CIFAR-10 pixels: NaN loss in the first epoch, ten times out of ten
    diverged = [{**run("cnn", None, status="diverged", seed=i), "report_input": True} for i in range(10)]
    cnn = published("cnn", "cifar10", "37.3")
    [cell] = verdicts.verdict_cells(frame(diverged), cnn).to_dict("records")
    assert (cell["n_ok"], cell["n_planned"], cell["not_ok"], cell["published"]) == (0, 10, "10 diverged", 37.3)
    assert (cell["verdict"], cell["why"]) == (CANT_TELL, "0 ok run(s), needs 2")
    assert (cell["could_change"], cell["if_imputed"]) == (True, "chance 10.00: differs")
    elsewhere = [{**line, "report_input": False} for line in diverged]  # at another input: not the report's cell
    assert math.isnan(verdicts.verdict_cells(frame(elsewhere), cnn)["published"].iloc[0])


def test_every_status_counts_as_planned():
    statuses = ["ok", "ok", "diverged", "timeout", "failed"]
    run_frame = frame([run("mlp", 86.0, dataset="fashion_mnist", status=s, seed=i) for i, s in enumerate(statuses)])
    [cell] = verdicts.verdict_cells(run_frame, published()).to_dict("records")
    assert (cell["n_ok"], cell["n_planned"], cell["not_ok"]) == (2, 5, "1 diverged, 1 failed, 1 timeout")


def test_imputation_uses_lowest_highest_and_chance():
    scenarios = verdicts.imputed_verdicts([86.4, 86.6], 1, 86.5, 1.0, chance=10.0)
    assert {name: value for name, (value, _) in scenarios.items()} == {"lowest ok": 86.4, "highest ok": 86.6, "chance": 10.0}
    assert verdicts.imputed_verdicts([86.4, 86.6], 0, 86.5, 1.0, chance=10.0) == {}


# ---------------------------------------------------------------- claims: verdicts


def test_a_clear_lead_holds():
    fish, mlp = [70.0, 71.0, 72.0], [20.0, 22.0, 21.0]
    comparisons, claims = evaluate(claim(), frame(runs("fishnet55", fish, options=DENSE), runs("mlp", mlp)))
    [line] = comparisons.to_dict("records")
    expected = scipy_stats.ttest_ind(fish, mlp, equal_var=False)
    assert (line["row"], line["against"], line["n_row"], line["n_against"]) == ("fishnet55 (head=dense)", "mlp", 3, 3)
    assert line["difference"] == pytest.approx(50.0)
    assert (line["ci_low"], line["ci_high"]) == pytest.approx(tuple(expected.confidence_interval(0.95)))
    assert line["p_raw"] == pytest.approx(expected.pvalue) and line["p_holm"] == pytest.approx(expected.pvalue)
    assert line["verdict"] == HOLDS and line["needs"] == ""
    assert claims["verdict"].tolist() == [HOLDS]
    assert list(comparisons.columns) == list(verdicts.COMPARISON_COLUMNS)
    assert list(claims.columns) == list(verdicts.CLAIM_COLUMNS)


def test_a_clear_deficit_contradicts():
    comparisons, claims = evaluate(claim(), frame(runs("fishnet55", [20.0, 22.0, 21.0], options=DENSE),
                                                  runs("mlp", [70.0, 71.0, 72.0])))
    assert comparisons["verdict"].tolist() == [CONTRADICTED] and claims["verdict"].tolist() == [CONTRADICTED]


def test_a_small_difference_cannot_tell():
    comparisons, _ = evaluate(claim(), frame(runs("fishnet55", [70.0, 75.0, 72.0], options=DENSE),
                                             runs("mlp", [71.0, 74.0, 70.0])))
    assert comparisons["verdict"].tolist() == [CANT_TELL]


def test_missing_rows_cannot_tell_and_name_the_runs_needed():
    text = claim(rows='[{model = "fishnet77", options = {head = "dense"}}]', others='than = [{model = "mlp"}]')
    comparisons, claims = evaluate(text, frame(runs("mlp", [20.0])))
    assert claims["verdict"].tolist() == [CANT_TELL]
    assert claims["needs"].tolist() == ["needs ok runs of fishnet77 (head=dense) on cifar10; "
                                        "needs 2 ok runs of mlp on cifar10 (has 1)"]
    assert math.isnan(comparisons["p_holm"].iloc[0])


def test_failed_runs_do_not_count_as_values():
    run_frame = frame(runs("fishnet55", [70.0, 71.0], options=DENSE), runs("mlp", [20.0, 21.0]),
                      [run("fishnet55", None, options=DENSE, status="failed")])
    comparisons, _ = evaluate(claim(), run_frame)
    assert comparisons["n_row"].tolist() == [2]


def test_a_claim_holds_only_when_all_its_comparisons_hold():
    text = claim(others='than = [{model = "mlp"}, {model = "cnn"}]')
    base = frame(runs("fishnet55", [70.0, 71.0, 72.0], options=DENSE), runs("mlp", [20.0, 22.0, 21.0]))
    _, claims = evaluate(text, pd.concat([base, frame(runs("cnn", [69.0, 75.0, 72.0]))]))
    assert claims[["n_holds", "n_cant_tell", "verdict"]].values.tolist() == [[1, 1, CANT_TELL]]
    _, claims = evaluate(text, pd.concat([base, frame(runs("cnn", [90.0, 91.0, 92.0]))]))
    assert claims["verdict"].tolist() == [CONTRADICTED]


def test_holm_adjusts_within_one_dataset_and_counts_a_pair_once():
    text = (claim(claim_id="a", others='than = [{model = "mlp"}, {model = "cnn"}]', datasets='["cifar10", "mnist"]')
            + claim(claim_id="b", kind="better_and_cheaper", metric="", others='than = [{model = "mlp"}]'))
    fish, mlp, cnn = [70.0, 71.0, 72.0], [20.0, 22.0, 21.0], [66.0, 69.0, 67.5]
    mnist = [runs(model, values, options=options, dataset="mnist") for model, values, options in
             [("fishnet55", [97.0, 98.0, 98.5], DENSE), ("mlp", [96.0, 97.5, 97.0], None)]]
    comparisons, _ = evaluate(text, frame(runs("fishnet55", fish, options=DENSE), runs("mlp", mlp), runs("cnn", cnn), *mnist))
    raw = [scipy_stats.ttest_ind(fish, other, equal_var=False).pvalue for other in (mlp, cnn)]
    cifar10 = comparisons[(comparisons["metric"] == "accuracy") & (comparisons["dataset"] == "cifar10")]
    assert cifar10["claim"].tolist() == ["a", "a", "b"]
    assert cifar10["p_holm"].tolist() == pytest.approx([*holm(raw), holm(raw)[0]])  # a family of 2, not 3
    mnist_mlp = comparisons[(comparisons["dataset"] == "mnist") & (comparisons["against"] == "mlp")].iloc[0]
    assert mnist_mlp["p_holm"] == pytest.approx(mnist_mlp["p_raw"])  # alone in its family: no cnn on mnist


def test_rows_are_chosen_by_their_options():
    text = claim(rows='[{model = "fishnet55", options = {head = "dense"}}]',
                 others='than = [{model = "fishnet55", options = {head = "conv"}}]')
    run_frame = frame(runs("fishnet55", [38.0, 39.0, 40.0], options=DENSE), runs("fishnet55", [25.0, 26.0, 27.0], options=CONV))
    comparisons, _ = evaluate(text, run_frame)
    assert comparisons["difference"].tolist() == pytest.approx([13.0])
    assert comparisons["verdict"].tolist() == [HOLDS]
    ambiguous, _ = evaluate(claim(rows='[{model = "fishnet55"}]'), pd.concat([run_frame, frame(runs("mlp", [1.0, 2.0]))]))
    assert ambiguous["verdict"].tolist() == [CANT_TELL]
    assert ambiguous["needs"].iloc[0] == "fishnet55 on cifar10 matches 2 option sets: name the options"


def test_comparisons_stay_within_one_setup():
    run_frame = frame(runs("fishnet55", [70.0, 71.0, 72.0], options=DENSE, setup="a"), runs("mlp", [20.0, 22.0, 21.0], setup="b"))
    comparisons, claims = evaluate(claim(), run_frame)
    assert claims[["setup", "verdict"]].values.tolist() == [["a", CANT_TELL], ["b", CANT_TELL]]


def test_near_holds_inside_the_margin_and_is_contradicted_far_outside():
    text = claim(kind="near", rows='[{model = "mlp"}]', others="", extra="value = 10.1\nmargin = 2.0")
    near, _ = evaluate(text, frame(runs("mlp", [10.0, 10.2, 9.9])))
    far, _ = evaluate(text, frame(runs("mlp", [24.0, 25.0, 23.0])))
    assert (near["verdict"].iloc[0], near["against"].iloc[0], near["rule"].iloc[0]) == (HOLDS, "10.1 ± 2", "tost+holm")
    assert near["p_raw"].iloc[0] == pytest.approx(tost([10.0, 10.2, 9.9], 8.1, 12.1).p_value)
    assert far["verdict"].iloc[0] == CONTRADICTED and far["difference"].iloc[0] == pytest.approx(13.9)


def test_a_near_claim_on_equal_runs_is_contradicted_only_from_six_runs_on():
    text = claim(kind="near", rows='[{model = "mlp"}]', others="", extra="value = 86.5\nmargin = 1.0")
    three, _ = evaluate(text, frame(runs("mlp", [10.0] * 3)))
    six, _ = evaluate(text, frame(runs("mlp", [10.0] * 6)))
    assert (three["verdict"].iloc[0], three["why"].iloc[0]) == (CANT_TELL, "Holm TOST p 1 >= 0.05; 3 equal runs give no 95 % CI, 6 do")
    assert six["verdict"].iloc[0] == CONTRADICTED


def test_time_is_judged_by_separate_confidence_intervals():
    text = claim(metric="ms_per_image", others='than = [{model = "mlp"}]')
    slow = [run("fishnet55", 70.0, options=DENSE, ms=ms, seed=s) for s, ms in enumerate([7.5, 8.0, 8.5])]
    fast = [run("mlp", 20.0, ms=ms, seed=s) for s, ms in enumerate([0.4, 0.5, 0.6])]
    close = [run("mlp", 20.0, ms=ms, seed=s) for s, ms in enumerate([6.0, 8.0, 10.0])]
    apart, _ = evaluate(text, frame(slow, fast))
    overlap, _ = evaluate(text, frame(slow, close))
    assert (apart["verdict"].iloc[0], apart["rule"].iloc[0]) == (HOLDS, "ci overlap")
    assert math.isnan(apart["p_holm"].iloc[0])
    assert overlap["verdict"].iloc[0] == CANT_TELL


def test_parameters_and_flops_are_compared_exactly():
    text = claim(kind="fewest", metric="params_total", others='among = [{model = "mlp"}, {model = "fishnet55", options = {head = "dense"}}]')
    fewer, claims = evaluate(text, frame(runs("fishnet55", [70.0], options=DENSE, params=118_752), runs("mlp", [20.0], params=2_411_274)))
    same, _ = evaluate(text, frame(runs("fishnet55", [70.0], options=DENSE, params=1000), runs("mlp", [20.0], params=1000)))
    assert len(fewer) == 1 and (fewer["verdict"].iloc[0], fewer["why"].iloc[0]) == (HOLDS, "118,752 < 2,411,274")
    assert same["verdict"].iloc[0] == CONTRADICTED  # equal counts are not fewer


def test_better_and_cheaper_needs_both():
    text = claim(kind="better_and_cheaper", metric="")
    run_frame = frame(runs("fishnet55", [70.0, 71.0, 72.0], options=DENSE, flops=49_000_000),
                      runs("mlp", [20.0, 22.0, 21.0], flops=4_800_000))
    comparisons, claims = evaluate(text, run_frame)
    assert comparisons[["metric", "verdict"]].values.tolist() == [["accuracy", HOLDS], ["flops_per_image", CONTRADICTED]]
    assert claims["verdict"].tolist() == [CONTRADICTED]


def test_a_runs_frame_without_the_needed_columns_is_refused():
    with pytest.raises(ValueError, match="lacks columns flops_per_image"):
        verdicts.claim_comparisons(frame(runs("mlp", [1.0])).drop(columns="flops_per_image"), [])


# ---------------------------------------------------------------- the claims file


def test_the_shipped_claims_file_loads_with_the_registry_names():
    loaded = load_claims(CLAIMS_FILE, models=MODELS, datasets=DATASETS)
    ids = [c.id for c in loaded.claims]
    assert len(ids) == len(set(ids)) >= 10
    assert {c.kind for c in loaded.claims} == set(KINDS)
    assert all(c.quote and c.section and verdicts.planned(c) for c in loaded.claims)
    assert loaded.margins == Margins()


def test_every_metric_a_claim_may_compare_has_a_rule_that_judges_it():
    assert set(verdicts.RULES) == set(METRICS)


def test_the_shipped_claims_file_is_refused_without_a_model_it_names():
    with pytest.raises(ValueError, match=r"unknown model .*fishnet77"):
        load_claims(CLAIMS_FILE, models=[m for m in MODELS if m != "fishnet77"], datasets=DATASETS)


@pytest.mark.parametrize("text, named", [
    (claim(rows='[{model = "resnet50"}]'), "Received: model='resnet50'"),
    (claim(datasets='["imagenet"]'), "Received: datasets='imagenet'"),
    (claim(kind="bigger"), "Received: kind='bigger'"),
    (claim(metric="loss"), "Received: metric='loss'"),
    (claim(extra='note = "x"'), "Received: 'note'"),
    (claim(kind="near", others="", extra="value = 10.1"), "missing key 'margin'"),
    ('[margins]\n"resnet50/cifar10" = 1.0\n' + claim(), "Received: 'resnet50/cifar10'"),
    (claim() + claim(), "claim id 'c' is used twice"),
])
def test_a_bad_claims_file_is_refused_in_one_line_naming_the_problem(text, named):
    with pytest.raises(ValueError) as error:
        claims_from("schema_version = 1\n" + text)
    message = str(error.value)
    assert named in message and "\n" not in message
    assert message.startswith("claims.toml: ") and "accepted: " in message


def test_an_unknown_model_message_lists_the_accepted_names():
    with pytest.raises(ValueError) as error:
        claims_from("schema_version = 1\n" + claim(rows='[{model = "resnet50"}]'))
    assert str(error.value) == (
        "claims.toml: claim 'c': unknown model in rows; accepted: mlp, cnn, mobilenet, fishnet55, fishnet77, "
        "fishnet99, fishnet150, fishnet201. Received: model='resnet50'")


# ---------------------------------------------------------------- single-run estimands


TEN = [85.2, 85.6, 85.9, 86.1, 86.3, 86.7, 86.9, 87.2, 87.5, 88.0]


def prediction(values, extra=0.0):
    """mean ± t(0.975, n-1)·√(s²(1+1/n) + extra), with numpy and scipy."""
    values = np.asarray(values)
    n, s = values.size, values.std(ddof=1)
    half = scipy_stats.t.ppf(0.975, n - 1) * math.sqrt(s**2 * (1 + 1 / n) + extra)
    return values.mean() - half, values.mean() + half


def test_a_single_run_value_at_the_median_of_ten_runs_is_consistent():
    median = float(np.median(TEN))
    judged = verdicts.judge_single_run(TEN, median)
    assert judged.verdict == verdicts.CONSISTENT and judged.rank == 5
    assert (judged.prediction.low, judged.prediction.high) == pytest.approx(prediction(TEN))


def test_a_single_run_value_five_standard_deviations_away_is_outside():
    away = float(np.mean(TEN) + 5 * np.std(TEN, ddof=1))
    judged = verdicts.judge_single_run(TEN, away)
    assert judged.verdict == verdicts.OUTSIDE and judged.rank == 10
    assert "outside the 95 % PI" in judged.why


def test_below_the_minimum_runs_a_single_run_value_cant_be_told():
    few = TEN[:verdicts.MIN_RUNS - 1]
    assert verdicts.judge_single_run(few, float(np.median(few))).verdict == CANT_TELL
    assert verdicts.judge_single_run(TEN[:verdicts.MIN_RUNS], 200.0).verdict == verdicts.OUTSIDE


def test_other_test_images_widen_the_interval_by_both_subsets_binomial_variance():
    extra = verdicts.subset_variance(86.5, 1000, 1000)
    assert extra == pytest.approx(2 * 0.865 * 0.135 / 1000 * 1e4)
    assert verdicts.subset_variance(86.5, None, 1000) == pytest.approx(extra / 2)
    judged = verdicts.judge_single_run(TEN, 86.5, extra)
    assert (judged.prediction.low, judged.prediction.high) == pytest.approx(prediction(TEN, extra))


def best_epoch_runs(values, *, profile="notebook", eval_images="first_1000", model="cnn", options=None):
    """Runs whose best epochs are ``values`` (final accuracies 1 pp lower), of one profile."""
    return [{**run(model, v - 1.0, options=options, dataset="fashion_mnist", seed=i, setup=f"profile={profile}"),
             "profile": profile, "best_epoch": v, "last_epoch": v - 0.5, "eval_images": eval_images}
            for i, v in enumerate(values)]


def notebook_value(value="86.0", estimand="best_epoch", model="cnn"):
    return published(model, value=value, estimand=estimand, protocol="notebook", test_images="first_1000")


def test_a_best_epoch_value_is_judged_among_our_best_epochs_on_its_test_images():
    [cell] = verdicts.verdict_cells(frame(best_epoch_runs(TEN)), notebook_value("86.5")).to_dict("records")
    assert (cell["estimand"], cell["statistic"], cell["basis"], cell["verdict"]) == (
        "best_epoch", "best_epoch", verdicts.EXACT, verdicts.CONSISTENT)
    assert (cell["pi_low"], cell["pi_high"]) == pytest.approx(prediction(TEN))
    assert cell["rank"] == 5 and cell["mean"] == pytest.approx(np.mean(TEN) - 1.0)  # the final-epoch mean kept beside


def test_a_setup_whose_protocol_did_not_produce_the_value_gets_no_verdict():
    run_frame = frame(best_epoch_runs(TEN, profile="paper", eval_images="all"))
    [cell] = verdicts.verdict_cells(run_frame, notebook_value("86.5")).to_dict("records")
    assert cell["verdict"] == verdicts.NO_VERDICT and cell["published"] == 86.5
    assert "came from the notebook protocol, not paper's" in cell["why"]
    no_protocol = published("cnn", value="86.5", estimand="best_epoch", protocol="")
    [cell] = verdicts.verdict_cells(frame(best_epoch_runs(TEN)), no_protocol).to_dict("records")
    assert cell["verdict"] == verdicts.NO_VERDICT and "no known protocol" in cell["why"]


def test_an_unknown_estimand_shows_our_numbers_and_no_verdict():
    [cell] = verdicts.verdict_cells(frame(best_epoch_runs(TEN)), notebook_value("86.5", "unknown")).to_dict("records")
    assert cell["verdict"] == verdicts.NO_VERDICT
    assert cell["n_stat"] == 10 and cell["rank"] == 5 and not math.isnan(cell["pi_low"])


def test_runs_on_other_test_images_are_judged_approximately_until_exact_runs_suffice():
    approximate = best_epoch_runs(TEN, eval_images="stratified_1000")
    for line in approximate:
        line["setup"] = "profile=notebook, eval_subset=stratified"
    [cell] = verdicts.verdict_cells(frame(approximate), notebook_value("86.5")).to_dict("records")
    assert cell["basis"].startswith(verdicts.APPROXIMATE) and cell["verdict"] == verdicts.CONSISTENT
    assert (cell["pi_low"], cell["pi_high"]) == pytest.approx(prediction(TEN, verdicts.subset_variance(86.5, 1000, 1000)))
    exact = best_epoch_runs(TEN[:verdicts.MIN_RUNS])
    cells = verdicts.verdict_cells(frame(approximate, exact), notebook_value("86.5")).set_index("setup")
    assert cells.loc["profile=notebook", "basis"] == verdicts.EXACT and cells.loc["profile=notebook", "n_stat"] == 4
    assert cells.loc["profile=notebook, eval_subset=stratified", "verdict"] == verdicts.NO_VERDICT  # never pooled


# ---------------------------------------------------------------- claims name the report's own models


def test_a_claim_row_compares_with_the_reports_variant_where_the_setup_ran_it():
    cnn = '[{model = "cnn", options = [{activation = "tanh"}, {activation = "relu"}]}]'
    text = claim(rows='[{model = "mlp"}]', others=f"than = {cnn}", datasets='["fashion_mnist"]')
    both = frame(runs("mlp", [90.0, 91.0], dataset="fashion_mnist"),
                 runs("cnn", [80.0, 81.0], dataset="fashion_mnist", options={"activation": "tanh"}),
                 runs("cnn", [95.0, 96.0], dataset="fashion_mnist", options={"activation": "relu"}))
    comparisons, _ = evaluate(text, both)
    assert list(comparisons["against"]) == ["cnn (activation=tanh)"]
    relu_only = both[both["options"].map(lambda o: o.get("activation") != "tanh")]
    comparisons, _ = evaluate(text, relu_only)
    assert list(comparisons["against"]) == ["cnn (activation=relu)"]


def test_a_claim_on_several_datasets_states_its_family_wise_error_and_its_interpretation():
    text = claim(datasets='["fashion_mnist", "cifar10"]', extra='interpretation = "cost read as FLOPs"')
    [parsed] = claims_from("schema_version = 1\n" + text).claims
    assert verdicts.reading(parsed) == ("cost read as FLOPs; 'contradicted' has a family-wise error up to "
                                        "2 × 0.05 = 0.1 (2 datasets, each its own Holm family)")
    shipped = {c.id: c for c in load_claims(models=MODELS, datasets=DATASETS).claims}
    dense = shipped["dense-head-more-accurate-than-conv-head"]
    assert {row.label for row in dense.than} == {f"fishnet55 (head={head})"
                                                for head in ("conv", "report_conv", "report_conv_softmax")}
    assert "FLOPs" in shipped["fishnets-better-and-cheaper"].interpretation
