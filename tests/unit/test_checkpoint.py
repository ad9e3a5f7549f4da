import pytest
import torch

from learners import build_learner, default_config, load_checkpoint, save_checkpoint
from learners.run import train_run
from learners.tasks import SineTasks


def test_round_trip_gives_same_predictions(tmp_path):
    config = default_config("sine", "maml")
    torch.manual_seed(0)
    learner = build_learner(config)
    save_checkpoint(tmp_path, learner, config, {"note": 1})
    loaded, saved = load_checkpoint(tmp_path)
    assert saved["config"] == config and saved["metrics"] == {"note": 1}
    b = SineTasks().sample(2, torch.Generator().manual_seed(0))
    a1 = learner.predict_tasks(learner.adapt_tasks(b.support_x, b.support_y), b.query_x)
    a2 = loaded.predict_tasks(loaded.adapt_tasks(b.support_x, b.support_y), b.query_x)
    assert torch.equal(a1, a2)


def test_loading_weights_never_unpickles(tmp_path, monkeypatch):
    import pickle

    config = default_config("omniglot", "protonet")
    torch.manual_seed(0)
    learner = build_learner(config)
    save_checkpoint(tmp_path, learner, config)

    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded, _ = load_checkpoint(tmp_path)  # a checkpoint loads with pickle disabled
    for (name, a), b in zip(learner.model.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("algo", ["maml", "reptile"])
def test_same_seed_same_weights_byte_for_byte(tmp_path, algo):
    config = default_config("sine", algo)
    train_run(config, tmp_path / "a", iterations=30, device="cpu", final_episodes=0, validate_every=10)
    train_run(config, tmp_path / "b", iterations=30, device="cpu", final_episodes=0, validate_every=10)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    other = dict(config, seed=1)
    train_run(other, tmp_path / "c", iterations=30, device="cpu", final_episodes=0, validate_every=10)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() != (tmp_path / "c" / "model.safetensors").read_bytes()


def test_missing_checkpoint_says_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="meta-train --out"):
        load_checkpoint(tmp_path)
