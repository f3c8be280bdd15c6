"""The stopping rule of ``bench run --until-ci W --max-repeats N`` (issue 14), on hand-made records.

Real campaigns (real workers) are in test_runner.py; here each cell's accuracies are known,
so is whether the rule keeps it open, and why.
"""
import dataclasses

import pytest
from helpers import one_claim, tiny_spec

import models
from bench.analysis.sources import Sources
from bench.records.store import RunRecord
from bench.run import stopping

RULE = stopping.StoppingRule(half_width=5.0, max_runs=10)


@pytest.fixture(scope="module")
def reference():
    return stopping.load_reference()


def test_the_claims_may_name_the_models_being_run_and_no_other(tmp_path):
    """Known without the model registry: the shipped profiles', the published table's and the runs' models."""
    claims = tmp_path / "claims.toml"
    claims.write_text(one_claim("mine", margins='"mine/cifar10" = 2.0'))
    assert stopping.load_reference(Sources(claims=str(claims)), ["mine"]).margins.cells == {"mine/cifar10": 2.0}
    with pytest.raises(ValueError) as error:
        stopping.load_reference(Sources(claims=str(claims)), ["mlp", "fishnet55"])
    message = str(error.value)
    assert "\n" not in message and message.startswith("claims.toml: ") and "Received: " in message and "'mine'" in message


def cell_records(spec, accuracies, statuses=None) -> list[RunRecord]:
    """Repeats 0.. of the spec's cell with these test accuracies (fractions)."""
    statuses = statuses or ["ok"] * len(accuracies)
    runs = [stopping.next_run(spec, repeat) for repeat in range(len(accuracies))]
    return [RunRecord(run_id=run.run_id, spec=run, status=status, test_accuracy=accuracy, num_classes=10)
            for run, accuracy, status in zip(runs, accuracies, statuses)]


def judge_one(spec, records, reference, rule=RULE) -> stopping.CellState:
    (state,) = stopping.judge({spec.config_key: spec}, records, rule, reference, {spec.config_key: "MLP"})
    return state


def test_the_flags_make_a_rule_that_says_itself():
    assert stopping.rule_from_flags(None, None, repeats=3) is None
    rule = stopping.rule_from_flags(2.0, 10, repeats=3)
    assert rule == stopping.StoppingRule(2.0, 10)
    assert rule.text == ("until the 95 % CI half-width <= 2 pp and the verdict is not can't tell, "
                         "at most 10 runs per cell")


def test_the_next_run_of_a_cell_is_seeded_as_the_profile_seeds_its_repeats():
    spec = tiny_spec(repeat=2, seed=102)  # a profile with seed = 100
    later = stopping.next_run(spec, 7)
    assert (later.repeat, later.seed) == (7, 107)
    assert later.config_key == spec.config_key and later.run_id != spec.run_id


def test_a_cell_with_fewer_than_two_ok_runs_stays_open(reference):
    spec = tiny_spec()
    state = judge_one(spec, cell_records(spec, [0.5, None], ["ok", "failed"]), reference)
    assert state.open_because == ("1 ok run(s), no CI yet",)
    assert (state.runs, state.next_repeat, state.label) == (2, 2, "MLP on synthetic")


def test_a_cell_of_equal_runs_stays_open_until_the_sign_test_gives_it_a_ci(reference):
    spec, anything = tiny_spec(), stopping.StoppingRule(1000, 10)
    assert judge_one(spec, cell_records(spec, [0.1] * 5), reference, anything).open_because == ("5 equal runs, no CI before 6",)
    assert judge_one(spec, cell_records(spec, [0.1] * 6), reference, anything).open_because == ()


def test_without_a_published_value_only_the_width_of_the_ci_decides(reference):
    spec = tiny_spec()
    wide = judge_one(spec, cell_records(spec, [0.20, 0.30]), reference)  # t(0.975, 1) 12.706 x sem 5
    assert wide.open_because == ("CI half-width 63.53 pp > 5 pp",)
    assert judge_one(spec, cell_records(spec, [0.20, 0.30]), reference, stopping.StoppingRule(100, 10)).open_because == ()


def test_where_the_report_has_a_value_the_cell_stays_open_while_the_verdict_is_cant_tell(reference):
    """FishNet55 at the notebook's protocol: the report's 88.6 is one run's best epoch on the first
    1,000 test images, judged by the prediction interval of our runs' best epochs from 4 runs on."""
    spec = dataclasses.replace(tiny_spec(model="fishnet55", model_options=models.options("fishnet55"),
                                         dataset="fashion_mnist", eval_per_class=100, eval_subset="first"),
                               profile="notebook")
    generous = stopping.StoppingRule(1000, 10)

    def judged(best_epochs):
        records = [dataclasses.replace(r, history=[{"epoch": 1, "val_accuracy": best}], input_shape=(56, 56, 3))
                   for r, best in zip(cell_records(spec, [best - 0.01 for best in best_epochs]), best_epochs)]
        return judge_one(spec, records, reference, generous).open_because

    (unsure,) = judged([0.88, 0.89])  # fewer runs than a prediction interval needs
    assert unsure.startswith("can't tell against the report's 88.6 (")
    assert judged([0.884, 0.887, 0.889, 0.885, 0.886, 0.888]) == ()  # consistent
    assert judged([0.50, 0.51, 0.52, 0.51]) == ()  # outside


def test_runs_of_other_cells_do_not_count(reference):
    spec, other = tiny_spec(), tiny_spec(epochs=9)
    state = judge_one(spec, cell_records(spec, [0.2, 0.21]) + cell_records(other, [0.9, 0.1, 0.5]), reference,
                      stopping.StoppingRule(100, 10))
    assert (state.runs, state.next_repeat, state.open_because) == (2, 2, ())


def test_the_status_lines_name_each_open_cell_why_and_whether_it_is_at_the_most_runs():
    spec = tiny_spec()
    states = [stopping.CellState(spec, "MLP on synthetic", 3, 3, ("CI half-width 9.00 pp > 5 pp",)),
              stopping.CellState(dataclasses.replace(spec, dataset="mnist"), "MLP on mnist", 10, 10,
                                 ("CI half-width 6.00 pp > 5 pp",)),
              stopping.CellState(spec, "CNN on synthetic", 3, 3, ())]
    assert stopping.status_lines(states, RULE, "round 2") == [
        "after round 2: 2 of 3 cells open",
        "  MLP on synthetic (3 runs): CI half-width 9.00 pp > 5 pp",
        "  MLP on mnist (10 runs, the most allowed): CI half-width 6.00 pp > 5 pp",
    ]
