"""The leave-alphabets-out validation: a fold never trains on what it is scored on, and a short
fold scores real Lake-layout runs built from its held-out alphabets (Omniglot from the shared data)."""

import pytest

from learners.folds import FOLDS, fold_config, run_fold, validate_recipe
from learners.registry import build_tasks, default_config, merge
from learners.tasks import load_omniglot_background


def test_each_fold_trains_on_the_other_six_alphabets():
    config = default_config("omniglot", "protonet")
    sizes = load_omniglot_background().alphabet_sizes()
    for held in FOLDS:
        train = build_tasks(fold_config(config, held), "train")
        seen = {a.split("@")[0] for a in train.charset.alphabets}
        assert seen == set(sizes) - set(held)
        assert max(sizes[a] for a in held) >= 20  # a 20-way within-alphabet run can be built


def test_a_short_fold_scores_runs_of_its_held_out_alphabets():
    config = merge(default_config("omniglot", "protonet"), ways=5, queries=1)
    folds = []
    summary = validate_recipe(config, budget_s=2.0, folds=FOLDS[:2], runs=2, device="cpu", on_fold=folds.append)
    assert [f.held for f in summary.folds] == list(FOLDS[:2]) and folds == summary.folds
    for f in summary.folds:
        assert f.items == 40 and 0.0 <= f.error_rate < 0.95 and f.iterations > 0  # 20-way chance is 95% error
        assert f.error_rate_tta is not None and 0.0 <= f.error_rate_tta <= 1.0  # the same model, with TTA
    errors = [f.error_rate for f in folds]
    mean = sum(errors) / len(errors)
    assert summary.mean_error == pytest.approx(mean)  # the summary is the folds' mean, and their spread around it
    assert summary.spread == pytest.approx((sum((e - mean) ** 2 for e in errors) / (len(errors) - 1)) ** 0.5, abs=1e-9)
    again = run_fold(config, FOLDS[0], budget_s=2.0, runs=2, device="cpu")
    assert again.items == 40
