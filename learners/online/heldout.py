"""The held-out judgement of an update's candidate: which buffered tasks are held out of its
training, and the gate it must pass against the champion on them before it is published.

How many tasks are held out matters more than it looks: two versions of a converged sine model
differ by a few percent, and on 16 held-out tasks the gate's estimate of that difference was
mostly noise (measured on 50 routine updates of two seeds: the per-task loss difference on 16
held-out tasks correlated 0.83 and 0.36 with the difference on 400 fresh tasks, on 64 tasks 0.88
and 0.64, on 128 0.97 and 0.84; the raw MSE's on 16 tasks -0.08 and 0.47), and a version the gate
passed was then rolled back by the rollout's own evidence on fresh tasks.
"""

from __future__ import annotations

from typing import Any

MIN_HELDOUT = 16  # a young buffer holds out at least this many tasks (or ``heldout``, when it asks for fewer)


def held_out_count(ready: int, heldout: int) -> int:
    """How many of ``ready`` tasks an update holds out: ``heldout`` once the buffer holds four
    times as many, a quarter of them before (at least ``MIN_HELDOUT``), so a young buffer still
    trains on most of its tasks.

    >>> held_out_count(1000, 64), held_out_count(120, 64), held_out_count(30, 64), held_out_count(30, 8)
    (64, 30, 16, 8)
    """
    return min(heldout, max(MIN_HELDOUT, ready // 4))


def era_heldout(heldout: int, era_tasks: int | None) -> int:
    """How many tasks an update may hold out when ``era_tasks`` of the buffered tasks arrived since
    the last drift (``None``: unknown): at most half of them, at least ``MIN_HELDOUT``, so right
    after a drift the gate judges on the new regime's tasks (the 64 newest would be mostly the old
    regime's: with them the stability bench's drifted MSE rose from 3.20 to 3.59), and on up to
    ``heldout`` once the era has grown.

    >>> era_heldout(64, 40), era_heldout(64, 300), era_heldout(64, None)
    (20, 64, 64)
    """
    return heldout if era_tasks is None else min(heldout, max(MIN_HELDOUT, era_tasks // 2))


def heldout_split(ready: list[str], heldout: int) -> tuple[list[str], list[str]]:
    """``(held out, training)`` task ids (``ready`` is oldest first): held out are every other one
    of the ``2 * n`` newest (``n = held_out_count(len(ready), heldout)``), so the newest tasks
    serve training too.

    >>> heldout_split([f"t{i}" for i in range(8)], 2)
    (['t4', 't6'], ['t0', 't1', 't2', 't3', 't5', 't7'])
    """
    heldout = held_out_count(len(ready), heldout)
    newest = ready[-2 * heldout:]
    held = newest[len(newest) % 2::2][-heldout:]
    held_set = set(held)
    return held, [t for t in ready if t not in held_set]


def passes_gate(kind: str, proposal: Any, margin: float) -> bool:
    """Whether a candidate passes the gate: its mean held-out loss (``candidate_loss``, per task
    as ``OnlineMetaLearner.task_losses`` makes it: relative MSE, error rate) not above the
    champion's by more than ``margin`` (for regression a share of the champion's loss, for
    classification accuracy points). The per-task loss, not the raw mean MSE, which one or two
    large-amplitude sine tasks decide.

    >>> from types import SimpleNamespace as P
    >>> passes_gate("regression", P(candidate_loss=0.104, champion_loss=0.1), 0.05)
    True
    >>> passes_gate("regression", P(candidate_loss=0.106, champion_loss=0.1), 0.05)
    False
    >>> passes_gate("classification", P(candidate_loss=0.14, champion_loss=0.1), 0.05)
    True
    """
    cand, champ = proposal.candidate_loss, proposal.champion_loss
    if kind == "regression":
        return cand <= champ * (1 + margin)
    return cand <= champ + margin
