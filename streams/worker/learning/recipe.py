"""What a version records so that ``metastream audit rebuild`` can re-run the update that made it
and get the same bytes: the update job's number (the seed of every draw it makes), the version
whose weights it started from, its plan and guard settings, the settings that shaped the replay
buffer, where the worker stood on the log when it snapshotted the buffer (per partition, and the
time, which orders it against remedies and score records), and digests of its inputs (starting
weights, buffer, probes), so a rebuild that differs says where.

Everything else an update reads is derived from the experiences named in the version's lineage
(replayed through the worker's own ingest path) and the log's ``scores`` and ``events``.

>>> r = Recipe(job=3, work="update", trigger="new_tasks", config={"algo": "fomaml"}, weights_from=0, weights_sha256="a",
...            plan=[10, 4, 8, 16, 0.5], guard=None, search=None, distil_factor=None, positions={0: 12}, at_ms=5,
...            buffer={"max_bytes": 100, "max_points_per_task": 8, "sha256": "b"}, probes_sha256="c",
...            replay={"guard": True, "guard_probes": 64, "drift_detector": "adwin", "max_batch_rows": 4096})
>>> Recipe.from_json(r.to_json()) == r
True
>>> guard = {"max_drop": 2.0, "distill": 1.0, "ewc": 0.0, "era": 1, "best": {0: [60.0, 62.0, 58.0]}}
>>> Recipe.from_json(json.dumps({**json.loads(r.to_json()), "guard": guard})).guard["best"]
{0: [60.0, 62.0, 58.0]}
>>> Recipe.from_json(json.dumps({**json.loads(r.to_json()), "guard": {**guard, "best": {0: 61.0}}})).guard["best"]
{0: [61.0, 61.0, 61.0]}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from learners.online import EraScore, GuardPlan, ProbeSet, UpdatePlan

from streams.worker.learning.process import SearchRequest, UpdateJob, Work


@dataclass
class Recipe:
    job: int
    work: str  # Work.value
    trigger: str  # Cause.value
    config: dict[str, Any]  # the learner's config when the job started (a search's winner changes it after)
    weights_from: int  # the version whose weights the update started from (0: the configured initial weights)
    weights_sha256: str
    plan: list  # UpdatePlan fields in order
    guard: dict[str, Any] | None  # max_drop, distill, ewc, best {era: [points, select, held]}, era
    search: dict[str, Any] | None
    distil_factor: float | None
    positions: dict[int, int]  # partition of experiences -> next offset, when the buffer was snapshotted
    at_ms: int
    buffer: dict[str, Any]  # max_bytes, max_points_per_task, sha256 (of the snapshot)
    probes_sha256: str
    replay: dict[str, Any]  # the settings the ingest path used (they decide what entered the buffer)
    old_tasks_sha256: str = ""  # the guard's anchors: buffered tasks of earlier eras
    shadow: dict[str, Any] | None = None  # a shadow's challenge: its name, config and the digest of its starting weights

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Recipe":
        data = json.loads(text)
        data["positions"] = {int(p): int(o) for p, o in data["positions"].items()}
        if data["guard"] is not None:
            data["guard"]["best"] = {int(e): [float(v) for v in p] if isinstance(p, list) else [float(p)] * 3
                                     for e, p in data["guard"]["best"].items()}  # a bare number: a recipe from before the halves
        return cls(**data)

    def job_for(self, weights: bytes, buffer, probes: ProbeSet, old_tasks: list[str], era: int) -> UpdateJob:
        """The update job this recipe describes, given its rebuilt inputs."""
        guard = None
        if self.guard is not None:
            g = self.guard
            best = {e: EraScore(*s) for e, s in g["best"].items()}  # [points, select, held]
            guard = GuardPlan(probes, best, g["max_drop"], g["distill"], g["ewc"], old_tasks, era,
                              alpha=g.get("alpha", 0.0),  # a recipe from before the noise-aware test: max_drop alone
                              folded=tuple(int(e) for e in g.get("folded", [])))
        search = None
        if self.search is not None:
            search = SearchRequest({name: spec for name, spec in self.search["space"]}, self.search["trials"],
                                   self.search["trial_iterations"])
        return UpdateJob(self.job, self.config, weights, buffer, UpdatePlan(*self.plan), guard, search, self.distil_factor,
                         work=Work(self.work))


def recipe_of(job: UpdateJob, trigger: str, weights_from: int, positions: dict[int, int], at_ms: int,
              replay: dict[str, Any]) -> Recipe:
    """The recipe of an update job the worker is about to run."""
    guard = None
    if job.guard is not None:
        g = job.guard
        guard = {"max_drop": g.max_drop, "distill": g.distill, "ewc": g.ewc, "era": g.current_era, "alpha": g.alpha,
                 "folded": list(g.folded),
                 "best": {e: [s.points, s.select, s.held] for e, s in g.best.items()}}
    search = None
    if job.search is not None:
        # the space as ordered pairs: the order parameters are suggested in decides what a seeded sampler draws
        search = {"space": [[name, spec] for name, spec in job.search.space.items()], "trials": job.search.trials,
                  "trial_iterations": job.search.trial_iterations}
    p = job.plan
    return Recipe(job.number, job.work.value, trigger, job.config, weights_from, hashlib.sha256(job.weights).hexdigest(),
                  [p.iterations, p.meta_batch, p.heldout, p.recent, p.recent_share], guard, search, job.distil_factor,
                  dict(positions), at_ms, {"max_bytes": job.buffer.max_bytes, "max_points_per_task": job.buffer.max_points_per_task,
                                           "sha256": job.buffer.digest()},
                  probes_digest(job.guard.probes if job.guard is not None else None), replay,
                  tasks_digest(job.guard.old_tasks if job.guard is not None else []),
                  None if job.shadow is None else {"name": job.shadow.name, "config": job.shadow.config,
                                                   "weights_sha256": hashlib.sha256(job.shadow.weights).hexdigest()})


def tasks_digest(task_ids: list[str]) -> str:
    return hashlib.sha256("\0".join(task_ids).encode()).hexdigest()


def probes_digest(probes: ProbeSet | None) -> str:
    """SHA-256 of the forgetting guard's probe tasks (era by era, in the order they were kept)."""
    h = hashlib.sha256()
    if probes is not None:
        for era in sorted(probes.tasks):
            for x, y in probes.tasks[era]:
                h.update(f"{era}\0{x.shape}\0".encode())
                h.update(x.tobytes())
                h.update(y.tobytes())
    return h.hexdigest()
