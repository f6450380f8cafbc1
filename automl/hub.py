"""Whether the Hugging Face Hub can be reached, asked in a second.

Offline, `from_pretrained("bert-base-uncased")` and `load_dataset("ag_news")` fail only after
huggingface_hub's retries, ~25 s on a machine whose DNS says at once that the host is unknown.
Before asking the Hub for a model or dataset it does not have in its cache, the plan tries one
TCP connection to the Hub's endpoint instead, and names the cause in one line.

No probe where it would not tell: offline mode (huggingface_hub fails fast by itself) and a
proxy (the route to the Hub is the proxy's, not a direct connection's: the environment's, or
the system's on macOS and Windows, as the HTTP client reads them).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

PROBE_TIMEOUT_S = 3.0
_REACHED: set[str] = set()  # endpoints reached in this process (a failure is asked again)


def unreachable() -> str | None:
    """Why the Hub cannot be reached from here ("huggingface.co cannot be reached (...)"),
    or None: reachable, or not worth asking (offline mode, a proxy)."""
    from urllib.request import getproxies

    from huggingface_hub import constants

    proxied = any(scheme in getproxies() for scheme in ("http", "https", "all"))
    if constants.HF_HUB_OFFLINE or proxied:
        return None
    return _probe(constants.ENDPOINT)


def _probe(endpoint: str) -> str | None:
    if endpoint in _REACHED:
        return None
    url = urlsplit(endpoint)
    try:
        host, port = url.hostname or endpoint, url.port or (443 if url.scheme == "https" else 80)
    except ValueError:  # a malformed port in HF_ENDPOINT: huggingface_hub's to report
        return None
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as err:
        cause = err.strerror or str(err) or type(err).__name__
        return f"{host} cannot be reached ({cause})"
    _REACHED.add(endpoint)
    return None


def in_cache(repo_id: str, repo_type: str = "model") -> bool:
    """Whether huggingface_hub's cache holds anything of the repo (then the libraries can load
    it offline, after their own retries)."""
    from huggingface_hub import constants

    folder = f"{repo_type}s--{repo_id.replace('/', '--')}"
    if (Path(constants.HF_HUB_CACHE) / folder).is_dir():
        return True
    if repo_type == "dataset":  # datasets' own cache of what it prepared: `org___snake_name`
        import datasets
        from datasets.naming import camelcase_to_snakecase

        namespace, _, name = repo_id.rpartition("/")
        folder = f"{namespace}___" * bool(namespace) + camelcase_to_snakecase(name)
        cache = Path(datasets.config.HF_DATASETS_CACHE)
        return (cache / folder).is_dir() or (cache / repo_id.replace("/", "___")).is_dir()
    return False


def weights_missing_offline(
    repo_id: str, weight_files: tuple[str, ...], problem_of: Callable[[Path], str | None]
) -> str | None:
    """Why a cached model cannot load here: its config (and tokenizer) are in the cache but
    none of `weight_files`, or not all their shards (`problem_of` a snapshot folder: an earlier
    AutoTokenizer call, an interrupted download), and the Hub cannot be asked for them. Every
    trial failed on it after the data was tokenized."""
    from huggingface_hub import constants, try_to_load_from_cache

    if not in_cache(repo_id):
        return None
    found = [try_to_load_from_cache(repo_id, name) for name in weight_files]
    paths = [Path(f) for f in found if isinstance(f, str)]
    problem = problem_of(paths[0].parent) if paths else "without its weights"
    if not problem:
        return None
    cause = "offline mode (HF_HUB_OFFLINE) is on" if constants.HF_HUB_OFFLINE else unreachable()
    if not cause:
        return None  # the libraries will download what is missing
    what = (
        f"without its weights ({' or '.join(weight_files[::2])}"
        if not paths
        else f"with its weights incomplete ({problem}"
    )
    return f"in the Hugging Face cache {what}: an interrupted download?), and {cause}"


def missing_offline(repo_id: str, repo_type: str = "model") -> str | None:
    """Why `repo_id` cannot be had here (not in the cache, the Hub not reachable), or None."""
    if in_cache(repo_id, repo_type):
        return None
    cause = unreachable()
    return f"not in the Hugging Face cache, and {cause}" if cause else None


def looks_like_path(name: str) -> bool:
    """A folder, not a Hub id: `./x`, `/x`, `~/x`, `a/b/c`, anything that exists, and `a/b`
    whose `a` is a folder here (`models/my-bret`, a typo: named at once, not asked of the Hub,
    which retries for ~25 s offline)."""
    first, _, rest = name.partition("/")
    return (
        name.startswith((".", "/", "~"))
        or Path(name).exists()
        or name.count("/") > 1
        or (bool(rest) and Path(first).is_dir())
    )
