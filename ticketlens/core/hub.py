"""Reaching the Hugging Face hub: one quick probe so an offline machine fails in seconds.

``transformers`` and ``datasets`` retry unreachable hosts for tens of seconds each; we probe
the endpoint once (3 s) and, when it cannot be reached, load from the local caches only.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager

TRUE = ("1", "true", "yes", "on")
DEFAULT_ENDPOINT = "https://huggingface.co"


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set or the hub endpoint does not answer within 3 s
    (probed once per process: the dataset and the model of one run share the answer)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in TRUE:
        return True
    return _unreachable()


@functools.lru_cache(maxsize=1)
def _unreachable() -> bool:
    import socket
    from urllib.parse import urlparse

    try:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    except ImportError:
        endpoint = os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT)
    url = urlparse(endpoint)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=3).close()
        return False
    except OSError:
        return True


@contextmanager
def offline_mode(*modules: object) -> Iterator[None]:
    """Switch ``huggingface_hub`` (and each module's ``config``, e.g. ``datasets``) to offline
    mode for the duration: both read ``HF_HUB_OFFLINE`` once, at import."""
    from huggingface_hub import constants

    targets = [constants] + [getattr(m, "config", m) for m in modules]
    saved = [getattr(t, "HF_HUB_OFFLINE", False) for t in targets]
    try:
        for t in targets:
            t.HF_HUB_OFFLINE = True
        yield
    finally:
        for t, v in zip(targets, saved):
            t.HF_HUB_OFFLINE = v

