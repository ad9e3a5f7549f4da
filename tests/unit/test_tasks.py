import math

import pytest
import torch
from PIL import Image

from learners.tasks import Affine, Episodes, SineTasks, load_alphabet_folder, load_omniglot_background, split_background


def test_sine_tasks_follow_finn_et_al():
    tasks = SineTasks(shots=10, queries=10)
    gen = torch.Generator().manual_seed(0)
    amp, phase = tasks.sample_params(5000, gen)
    assert 0.1 <= amp.min() and amp.max() <= 5.0
    assert 0.0 <= phase.min() and phase.max() <= math.pi
    batch = tasks.sample(100, gen)
    assert batch.support_x.shape == (100, 10, 1) and batch.query_x.shape == (100, 10, 1)
    assert batch.support_x.abs().max() <= 5.0
    assert batch.support_y.abs().max() <= 5.0


def test_sine_sampling_is_seeded():
    a = SineTasks().sample(3, torch.Generator().manual_seed(7))
    b = SineTasks().sample(3, torch.Generator().manual_seed(7))
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_y, b.query_y)


def test_omniglot_background_is_deduplicated():
    cs = load_omniglot_background()
    assert len(cs.alphabets) == 8
    assert cs.num_characters == 242
    assert cs.images.shape == (4840, 28, 28)
    assert cs.images.dtype == torch.uint8
    # ink is high: most of a character image is background (0)
    assert (cs.images == 0).float().mean() > 0.7


def test_alphabet_split_is_disjoint_and_fixed():
    train, val = split_background(load_omniglot_background())
    assert set(val.alphabets) == {"Balinese", "Early_Aramaic"}
    assert not set(train.alphabets) & set(val.alphabets)
    assert train.num_characters + val.num_characters == 242


def test_within_alphabet_episodes_draw_from_one_alphabet():
    cs = load_omniglot_background().with_rotations()
    eps = Episodes(cs, ways=20, shots=1, queries=2, within_alphabet=True)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        classes = eps._classes(gen)
        assert len(set(cs.char_alphabet[classes].tolist())) == 1
    batch = eps.sample(2, gen)
    assert batch.support_x.shape == (2, 20, 1, 28, 28) and batch.query_y.shape == (2, 40)
    assert batch.support_y[0].tolist() == list(range(20))


def test_rotations_are_new_classes_in_their_own_alphabets():
    cs = load_omniglot_background()
    rot = cs.with_rotations()
    assert rot.num_characters == 4 * cs.num_characters
    assert "Greek@90" in rot.alphabets
    first = int(rot.starts[cs.num_characters])
    assert torch.equal(rot.images[first], torch.rot90(cs.images[0], 1))


def test_too_many_ways_is_a_clear_error():
    cs = load_omniglot_background()  # largest alphabet: 47 characters
    with pytest.raises(ValueError, match="within-alphabet"):
        Episodes(cs, ways=50, within_alphabet=True)
    with pytest.raises(ValueError, match="need 20 characters"):
        Episodes(cs.subset_alphabets(["Tagalog"]), ways=20)
    with pytest.raises(ValueError, match="unknown alphabets"):
        load_omniglot_background().subset_alphabets(["Klingon"])


def test_affine_keeps_shape_and_is_seeded():
    x = torch.rand(4, 1, 28, 28)
    a = Affine()(x, torch.Generator().manual_seed(1))
    b = Affine()(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)


def _write_folder(root, alphabets=2, chars=3, drawers=4):
    for a in range(alphabets):
        for c in range(chars):
            d = root / f"alpha{a}" / f"char{c}"
            d.mkdir(parents=True)
            for k in range(drawers):
                img = Image.new("L", (40, 40), 255)
                img.paste(0, (4 * c + k, 4 * a, 4 * c + k + 10, 4 * a + 10))
                img.save(d / f"{k}.png")


def test_any_alphabet_folder_gives_episodes(tmp_path):
    _write_folder(tmp_path)
    cs = load_alphabet_folder(tmp_path, size=20)
    assert cs.num_characters == 6 and cs.images.shape == (24, 20, 20)
    batch = Episodes(cs, ways=3, shots=1, queries=2, within_alphabet=True).sample(2, torch.Generator().manual_seed(0))
    assert batch.query_x.shape == (2, 6, 1, 20, 20)


def test_folder_errors_say_what_layout_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="alphabet/character"):
        load_alphabet_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="alphabet/character"):
        load_alphabet_folder(tmp_path)
    bad = tmp_path / "a" / "c"
    bad.mkdir(parents=True)
    (bad / "x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image"):
        load_alphabet_folder(tmp_path)
