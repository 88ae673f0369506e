"""Short-lived state behind one interface: etcd for real deployments, memory for a laptop."""

from __future__ import annotations

from ..settings import Settings
from .base import Store, StoreUnavailable
from .memory import MemoryStore

__all__ = ["Store", "StoreUnavailable", "open_store"]


def open_store(settings: Settings) -> Store:
    if settings.etcd is None:
        return MemoryStore()
    from .etcd import EtcdStore  # grpc is only loaded when etcd is configured

    return EtcdStore(settings.etcd)
