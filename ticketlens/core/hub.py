"""Reaching the Hugging Face hub: one quick probe so an offline machine fails in seconds.

``transformers`` and ``datasets`` retry unreachable hosts for tens of seconds each; the
caller probes the endpoint once (3 s) and, when it cannot be reached, loads from the local
caches only. Nothing is cached here: ``pruning.setup.prepare`` probes once per search and
hands the answer to the task and the model loaders.
"""

from __future__ import annotations

import os

TRUE = ("1", "true", "yes", "on")
DEFAULT_ENDPOINT = "https://huggingface.co"


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set or the hub endpoint (``HF_ENDPOINT``) does not
    answer within 3 s."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in TRUE:
        return True
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=3).close()
        return False
    except OSError:
        return True
