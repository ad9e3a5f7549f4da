"""Client SDK: agents publish experiences with :class:`ExperiencePublisher` (``publisher.py``);
consumers follow model versions with :class:`ModelSubscriber` (``subscriber.py``), which verifies
sha256 and signatures and loads safetensors (never pickles); :class:`ModelRegistry` lists versions,
gets one by number or ``name@alias`` and sets aliases and tags (``registry.py``).

    from streams.client import ExperiencePublisher, ModelSubscriber

Neither imports torch: publishing and following the registry need numpy, aiokafka, fastavro and
cryptography only; torch is imported when a version is loaded to adapt it.
"""

from __future__ import annotations

from streams.client.publisher import ExperiencePublisher, SyncExperiencePublisher
from streams.client.registry import ModelRegistry, ModelVersionInfo, RegistryError, SyncModelRegistry
from streams.client.subscriber import IntegrityError, LoadedModel, ModelSubscriber, UnusableVersion, load_model_version

__all__ = ["ExperiencePublisher", "SyncExperiencePublisher", "IntegrityError", "LoadedModel", "ModelSubscriber",
           "UnusableVersion", "load_model_version", "ModelRegistry", "ModelVersionInfo", "RegistryError", "SyncModelRegistry"]
