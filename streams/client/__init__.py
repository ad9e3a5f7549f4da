"""Client SDK: agents publish experiences with :class:`ExperiencePublisher` (``publisher.py``: no
torch needed); consumers follow model versions with :class:`ModelSubscriber` (``subscriber.py``),
which verifies sha256 and loads safetensors (never pickles).

    from streams.client import ExperiencePublisher, ModelSubscriber

The subscriber's names are imported on first use, so ``from streams.client import
ExperiencePublisher`` does not import torch.
"""

from __future__ import annotations

from streams.client.publisher import ExperiencePublisher, SyncExperiencePublisher

_SUBSCRIBER = ("IntegrityError", "LoadedModel", "ModelSubscriber", "UnusableVersion", "load_model_version")

__all__ = ["ExperiencePublisher", "SyncExperiencePublisher", *_SUBSCRIBER]


def __getattr__(name: str):
    if name in _SUBSCRIBER:
        from streams.client import subscriber

        return getattr(subscriber, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
