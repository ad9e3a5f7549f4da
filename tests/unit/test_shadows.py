"""Shadow candidates one piece at a time: the paired comparison, the bandit's choice, the
challenge rule, the swap; the feature steps a shadow may add (log, products, selection) and the
importance a version carries."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save as save_safetensors

from learners.errors import ConfigError
from learners.online.shadows import ShadowPool, variant
from learners.tabular.standardiser import FeatureStandardiser, pipeline_summary, set_importance, tabular_backbone
from learners.tasks.base import TaskBatch
from streams.catalog.presets import TABULAR_SHADOWS, tabular_model
from streams.catalog.model_configs import parse_models


class Fixed:
    """A learner whose per-task rewards are given."""

    def __init__(self, reward: float, noise: float = 0.0, seed: int = 0) -> None:
        self.reward, self.noise = reward, noise
        self.gen = np.random.default_rng(seed)
        self.config = {}

    def task_rewards(self, batch, steps=None):
        return np.clip(self.reward + self.noise * self.gen.normal(size=batch), 0, 1)


def pool(**kw) -> ShadowPool:
    p = ShadowPool("champion", window=40, margin=0.02, min_tasks=20, **kw)
    p.add("better", Fixed(0.8, 0.05, 1))
    p.add("same", Fixed(0.7, 0.05, 2))
    return p


def test_a_shadow_challenges_only_with_enough_tasks_and_a_clear_paired_lead():
    p = pool()
    champion = Fixed(0.7, 0.05, 3)
    p.observe(champion, 8)
    assert p.challenger() is None  # 8 tasks < min_tasks
    for _ in range(3):
        p.observe(champion, 8)
    c = p.challenger()
    assert c is not None and c.name == "better" and c.tasks == 32
    assert c.gain == pytest.approx(0.1, abs=0.03) and c.gain_lower_bound > 0
    assert c.shadow_reward > c.champion_reward


def test_a_shadow_level_with_the_champion_never_challenges():
    p = ShadowPool("champion", window=40, margin=0.02, min_tasks=20)
    p.add("same", Fixed(0.7, 0.1, 2))
    champion = Fixed(0.7, 0.1, 3)
    for _ in range(20):
        p.observe(champion, 8)
        assert p.challenger() is None


def test_the_bandit_tries_unscored_shadows_first_then_favours_the_better_one():
    p = pool()
    assert p.pick().name in ("better", "same")
    p.observe(Fixed(0.7), 8)
    picks = []
    for _ in range(30):
        s = p.pick()
        s.updates += 1
        picks.append(s.name)
    assert picks.count("better") > picks.count("same") > 0  # explores, but spends most on the promising one


def test_a_published_challenger_swaps_places_and_a_rejected_one_starts_over():
    p = pool()
    champion = Fixed(0.7, 0.05, 3)
    for _ in range(4):
        p.observe(champion, 8)
    p.reset("same")
    assert len(p.shadows["same"].gain_mean.window) == 0
    p.swap("better", champion)
    assert p.champion_name == "better" and set(p.shadows) == {"same", "champion"}
    assert p.shadows["champion"].learner is champion
    assert p.champion_reward.get() == pytest.approx(0.8, abs=0.03)  # the winner's window came with it
    assert all(len(s.gain_mean.window) == 0 for s in p.shadows.values())  # gains were against the old champion
    assert [r["role"] for r in p.table()] == ["champion", "shadow", "shadow"]


def test_a_rolled_back_switch_puts_the_former_champion_back():
    p = pool()
    champion, shadow = Fixed(0.7), p.shadows["better"].learner
    champion.config, shadow.config = {"algo": "protonet"}, {"algo": "matching"}
    p.swap("better", champion)
    assert p.champion_name == "better"
    assert p.switch_back(shadow, {"algo": "protonet"})  # the rollout rolled "better" back to a protonet version
    assert p.champion_name == "champion" and p.shadows["better"].learner is shadow
    assert not p.switch_back(shadow, {"algo": "maml"})


def test_real_shadows_of_a_tabular_model_are_scored_on_the_same_split():
    config = tabular_model(4, ways=2, shots=2)
    p = ShadowPool.from_config(config, [{"algo": "matching"}, {"backbone": {"log": True, "products": 2, "select": True}}])
    from learners.online import OnlineMetaLearner

    champion = OnlineMetaLearner(config)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, 4, generator=gen)
    y = torch.tensor([0, 1]).repeat(6, 1)
    batch = TaskBatch(x, y, x + 0.01, y)
    p.observe(champion, batch)
    assert set(p.shadows) == {"algo=matching", "backbone.log=True,backbone.products=2,backbone.select=True"}
    assert all(len(s.reward.window) == 6 for s in p.shadows.values())
    assert all(0 <= r["reward"] <= 1 for r in p.table())


def test_variants_merge_section_by_section_and_shadow_lists_are_checked():
    base = tabular_model(3)
    assert variant(base, {"backbone": {"hidden": 128}})["backbone"]["inputs"] == 3
    assert base["backbone"]["hidden"] == 64  # a copy
    assert tabular_model(3, shadows=True)["shadows"] == TABULAR_SHADOWS
    assert "shadows" not in tabular_model(3)
    with pytest.raises(ConfigError, match="shadows"):
        parse_models(json.dumps({"m": {**tabular_model(3), "shadows": "matching"}}))
    with pytest.raises(ConfigError, match="shadows"):
        parse_models(json.dumps({"m": {**tabular_model(3), "shadows": [{}]}}))
    assert parse_models(json.dumps({"m": {"preset": "tabular", "features": 3, "shadows": True}}))["m"]["shadows"] == TABULAR_SHADOWS


def test_feature_steps_log_skewed_columns_select_by_importance_and_multiply_the_top_pairs():
    gen = np.random.default_rng(0)
    rows = np.stack([gen.lognormal(3, 2, 200), gen.normal(size=200), gen.normal(size=200)], 1).astype("f4")
    layer = FeatureStandardiser(3, missing=False, log=True, products=1, select=True)
    layer.refit(rows)
    assert layer.log_cols.tolist() == [1.0, 0.0, 0.0]  # only the skewed one
    assert layer.keep.tolist() == [1.0, 1.0, 1.0] and not layer.pairs_set  # no importance yet
    out = layer(torch.from_numpy(rows))
    assert out.shape == (200, 4) and abs(float(out[:, 0].mean())) < 1e-4 and torch.all(out[:, 3] == 0)
    layer.importance.copy_(torch.tensor([0.2, 0.0, 0.1]))
    layer.refit(rows)
    assert layer.keep.tolist() == [1.0, 0.0, 1.0] and layer.pairs.tolist() == [[0, 2]] and layer.pairs_set
    out = layer(torch.from_numpy(rows))
    assert torch.all(out[:, 1] == 0) and torch.allclose(out[:, 3], out[:, 0] * out[:, 2])
    layer.importance.copy_(torch.tensor([0.0, 0.5, 0.0]))
    layer.refit(rows)
    assert layer.pairs.tolist() == [[0, 2]]  # products stay fixed once chosen: the weights after them depend on it


def test_a_version_shows_each_features_importance_and_its_products():
    net = tabular_backbone(3, hidden=8, layers=1, outputs=4, products=1)
    rows = np.random.default_rng(1).normal(size=(50, 3)).astype("f4")
    net[0].refit(rows)
    set_importance(net, np.array([0.3, 0.05, 0.2]))
    net[0].refit(rows)
    weights = save_safetensors({k: v.contiguous() for k, v in net.state_dict().items()})
    config = {"backbone": {"name": "tabular"}, "task": {"names": ["a", "b", "c"]}}
    summary = pipeline_summary(weights, config)
    assert [r["feature"] for r in summary] == ["a", "b", "c", "a * c"]
    assert [r["importance"] for r in summary] == [0.3, 0.05, 0.2, None]
    json.dumps(summary, allow_nan=False)  # strict JSON for 'models show'
