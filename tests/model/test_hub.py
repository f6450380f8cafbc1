"""A Hub model or dataset that is neither cached nor reachable is one line in a second, not
after huggingface_hub's ~25 s of retries."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from automl import hub
from automl.config.schema import DataConfig, ModelConfig
from automl.data.load import load_task_data
from automl.data.task import DataError
from automl.model.load import ModelError, load_model_config


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """Online mode, no proxy, an empty cache and a Hub endpoint nothing listens on."""
    from huggingface_hub import constants

    with socket.socket() as sock:  # a port that was free a moment ago: refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    for scheme in ("http", "https", "all"):
        monkeypatch.delenv(f"{scheme}_proxy", raising=False)
        monkeypatch.delenv(f"{scheme.upper()}_PROXY", raising=False)
    hub._REACHED.clear()
    yield "127.0.0.1 cannot be reached ("
    hub._REACHED.clear()


def test_an_uncached_model_or_dataset_is_refused_at_once(
    no_hub: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused from the cache and one connection attempt, never through the libraries' own
    downloads (huggingface_hub retried for minutes there)."""
    import datasets
    import transformers

    def download(*args: object, **kwargs: object) -> None:
        raise AssertionError("asked the library to download it")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", download)
    monkeypatch.setattr(datasets, "load_dataset", download)
    with pytest.raises(ModelError) as err:
        load_model_config(ModelConfig(source="pretrained", name_or_path="org/some-model"))
    assert str(err.value).startswith(
        f"model.name_or_path: 'org/some-model': not in the Hugging Face cache, and {no_hub}"
    )
    with pytest.raises(DataError) as err:
        load_task_data(DataConfig(source="hf", hf_name="org/some-data"))
    assert str(err.value).startswith("data.hf_name: 'org/some-data': not in the Hugging Face")


def test_no_probe_where_it_cannot_tell(
    no_hub: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from huggingface_hub import constants

    assert (hub.unreachable() or "").startswith(no_hub)
    (tmp_path / "hub" / "models--org--cached").mkdir(parents=True)
    assert hub.missing_offline("org/cached") is None  # the libraries load it from the cache
    assert hub.missing_offline("org/cached", "dataset") is not None  # a model's, not a dataset's
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "prepared")
    assert not hub.in_cache("mteb/AmazonCounterfactual", "dataset")
    (tmp_path / "prepared" / "mteb___amazon_counterfactual").mkdir(parents=True)  # datasets' own
    assert hub.in_cache("mteb/AmazonCounterfactual", "dataset")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")  # the proxy's route, not ours
    assert hub.unreachable() is None
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # huggingface_hub fails fast itself
    assert hub.unreachable() is None


def test_a_cached_model_without_its_weights_is_refused_offline(
    no_hub: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Config and tokenizer in the cache, the weights not (an interrupted download): the
    checks passed and every trial failed on the weights after the data was tokenized."""
    from huggingface_hub import constants

    snapshot = tmp_path / "hub" / "models--org--partial" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc")
    (snapshot / "config.json").write_text('{"model_type": "bert"}')
    cfg = ModelConfig(source="pretrained", name_or_path="org/partial")
    with pytest.raises(ModelError) as err:
        load_model_config(cfg)
    assert str(err.value).startswith(
        "model.name_or_path: 'org/partial': in the Hugging Face cache without its weights "
        f"(model.safetensors or pytorch_model.bin: an interrupted download?), and {no_hub}"
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError, match="without its weights .* offline mode"):
        load_model_config(cfg)
    header = b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'
    weights = len(header).to_bytes(8, "little") + header + bytes(8)  # a whole safetensors file
    (snapshot / "model.safetensors").write_bytes(weights)
    assert load_model_config(cfg).model_type == "bert"  # whole: it loads from the cache


def test_a_cached_model_missing_a_shard_is_refused_offline(no_hub: str, tmp_path: Path) -> None:
    """The usual interrupted download of a large model: the shard index and one shard."""
    import json

    snapshot = tmp_path / "hub" / "models--org--sharded" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc")
    (snapshot / "config.json").write_text('{"model_type": "bert"}')
    shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    index = {"weight_map": {"a": shards[0], "b": shards[1]}}
    (snapshot / "model.safetensors.index.json").write_text(json.dumps(index))
    (snapshot / shards[0]).write_bytes(b"weights")
    with pytest.raises(ModelError) as err:
        load_model_config(ModelConfig(source="pretrained", name_or_path="org/sharded"))
    assert "with its weights incomplete (model-00002-of-00002.safetensors is missing" in str(
        err.value
    )
