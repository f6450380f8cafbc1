"""Whether the Hugging Face Hub can be reached, asked in a second.

Offline, `from_pretrained("bert-base-uncased")` and `load_dataset("ag_news")` fail only after
huggingface_hub's retries, ~25 s on a machine whose DNS says at once that the host is unknown.
Before asking the Hub for a model or dataset it does not have in its cache, the plan tries one
TCP connection to the Hub's endpoint instead, and names the cause in one line.

No probe where it would not tell: offline mode (huggingface_hub fails fast by itself) and a
proxy (the route to the Hub is the proxy's, not a direct connection's).
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

PROBE_TIMEOUT_S = 3.0
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                    "all_proxy")  # fmt: skip


def unreachable() -> str | None:
    """Why the Hub cannot be reached from here ("huggingface.co cannot be reached (...)"),
    or None: reachable, or not worth asking (offline mode, a proxy)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or any(os.environ.get(v) for v in _PROXY_VARIABLES):
        return None
    return _probe(constants.ENDPOINT)


@functools.cache  # once a process: the answer does not change within a plan
def _probe(endpoint: str) -> str | None:
    url = urlsplit(endpoint)
    host = url.hostname or endpoint
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as err:
        cause = err.strerror or str(err) or type(err).__name__
        return f"{host} cannot be reached ({cause})"
    return None


def in_cache(repo_id: str, repo_type: str = "model") -> bool:
    """Whether huggingface_hub's cache holds anything of the repo (then the libraries can load
    it offline, after their own retries)."""
    from huggingface_hub import constants

    folder = f"{repo_type}s--{repo_id.replace('/', '--')}"
    if (Path(constants.HF_HUB_CACHE) / folder).is_dir():
        return True
    if repo_type == "dataset":  # datasets' own cache of what it prepared
        import datasets

        return (Path(datasets.config.HF_DATASETS_CACHE) / repo_id.replace("/", "___")).is_dir()
    return False


def missing_offline(repo_id: str, repo_type: str = "model") -> str | None:
    """Why `repo_id` cannot be had here (not in the cache, the Hub not reachable), or None."""
    if in_cache(repo_id, repo_type):
        return None
    cause = unreachable()
    return f"not in the Hugging Face cache, and {cause}" if cause else None
