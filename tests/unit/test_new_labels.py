"""Adaptation to a target whose classes the source never saw (``learners/transfer/new_labels.py``),
on real images: UCI digits 0-4 as the source, 5-9 as the target with 5 labels each (bench/transfer.py
does Omniglot alphabet to alphabet)."""

import torch

from learners.transfer.adaptation import Domains, accuracy, adabn_statistics, train_source
from learners.transfer.digit_domains import load_uci_digits, split_by_class
from learners.transfer.new_labels import NEW_LABEL_ADAPT, NEW_LABEL_METHODS, GlyphNet, choose_new_label_method


def _split():
    x, y = load_uci_digits()
    old, new = y < 5, y >= 5
    return x[old], y[old], x[new], y[new] - 5


def test_every_method_learns_the_new_classes_from_five_labels_and_leaves_the_source_alone():
    sx, sy, tx, ty = _split()
    model = train_source(sx, sy, epochs=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    labelled, rest = split_by_class(ty, 5, 0)
    d = Domains(model, sx, sy, tx[rest[: len(rest) // 2]])
    test = rest[len(rest) // 2 :]
    scores = {m: accuracy(NEW_LABEL_ADAPT[m](d, tx[labelled], ty[labelled], 0), tx[test], ty[test]) for m in NEW_LABEL_METHODS}
    assert all(s > 0.5 for s in scores.values()), scores  # five new digits; chance is 0.2
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # adapted copies only
    chosen, cv = choose_new_label_method(d, tx[labelled], ty[labelled])
    assert chosen in NEW_LABEL_METHODS and set(cv) == set(NEW_LABEL_METHODS) and cv[chosen] == max(cv.values())
    assert NEW_LABEL_ADAPT["coral"](d, tx[labelled], ty[labelled], 0)(tx[:3]).shape == (3, 5)


def test_the_glyph_network_adabn_re_estimates_its_convolution_statistics():
    torch.manual_seed(0)
    net = GlyphNet(inputs=196, channels=4, embedding=8, classes=3)
    target = torch.rand(64, 196) * 0.5 + 0.5
    adabn_statistics(net, target)
    conv_norm = net.body[2]
    with torch.no_grad():
        pre = net.body[1](net.body[0](target))
    assert torch.allclose(conv_norm.running_mean, pre.mean((0, 2, 3)), atol=1e-4)
    assert net(target).shape == (64, 3)
