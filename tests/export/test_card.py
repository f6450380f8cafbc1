"""The exported model's card declares its base model's license (a fine-tune inherits it) when
the base model's own card is at hand, and nothing it cannot know."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml
from conftest import make_tiny_config

from automl.config.schema import ModelConfig
from automl.export.card import base_model_license, model_card

PROVENANCE = {"sweep": "unit", "best_value": 0.9, "trial_id": "t1", "base_model": "base"}


def front_matter(card: str) -> dict:
    _, front, _ = card.split("---\n", 2)
    return yaml.safe_load(front)


def test_the_packaged_minilm_card_declares_apache_2() -> None:
    conf = replace(make_tiny_config(), model=ModelConfig())  # the embedded default model
    assert base_model_license(conf.model) == {"license": "apache-2.0"}
    assert front_matter(model_card(conf, PROVENANCE, ["a", "b"]))["license"] == "apache-2.0"


def test_a_local_base_model_passes_its_license_on(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n# my model\n")
    model = ModelConfig(source="pretrained", name_or_path=str(tmp_path))
    assert base_model_license(model) == {"license": "mit"}
    # several: the Hub's `license` holds one id ("mit, apache-2.0" was refused on a push)
    (tmp_path / "README.md").write_text("---\nlicense: [mit, apache-2.0]\n---\n")
    assert base_model_license(model) == {"license": "other", "license_name": "mit-apache-2.0"}
    (tmp_path / "README.md").write_text("---\nlicense: [apache-2.0, CC BY-NC 4.0]\n---\n")
    assert base_model_license(model)["license_name"] == "apache-2.0-cc-by-nc-4.0"  # a slug
    # `other` names its terms in two more keys, which went missing; a link to a file of the
    # base model's folder would point at nothing in the export
    link = "https://example.com/terms"
    (tmp_path / "README.md").write_text(
        f"---\nlicense: other\nlicense_name: llama3\nlicense_link: {link}\n---\n"
    )
    assert base_model_license(model) == {
        "license": "other", "license_name": "llama3", "license_link": link
    }  # fmt: skip
    (tmp_path / "README.md").write_text(
        "---\nlicense: other\nlicense_name: llama3\nlicense_link: LICENSE\n---\n"
    )
    assert base_model_license(model) == {"license": "other", "license_name": "llama3"}


def test_no_card_no_license(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# a card without front matter\n")
    local = ModelConfig(source="pretrained", name_or_path=str(tmp_path))
    uncached = ModelConfig(source="pretrained", name_or_path="someone/not-in-any-cache")
    assert base_model_license(local) == {} and base_model_license(uncached) == {}
    conf = make_tiny_config()  # a random tiny model has no base card at all
    assert base_model_license(conf.model) == {}
    assert "license" not in front_matter(model_card(conf, PROVENANCE, ["a", "b"]))


def test_an_export_fine_tuned_again_names_its_lineage(tmp_path: Path) -> None:
    """Continuing an export on new data: the card named the base `best` (the folder's name)
    and put that in `base_model`, which names Hub models."""
    import json

    from automl.export.portable import base_model_name, portable_model_provenance

    earlier = tmp_path / "v1" / "best"
    earlier.mkdir(parents=True)
    first = portable_model_provenance(replace(make_tiny_config(), model=ModelConfig()), {})
    (earlier / "provenance.json").write_text(
        json.dumps({**PROVENANCE, "sweep": "v1", "trial_id": "3f5e02d6", **first})
    )
    conf = replace(make_tiny_config(), model=ModelConfig(source="pretrained",
                                                         name_or_path=str(earlier)))  # fmt: skip
    details = base_model_name(conf.model)
    hub_id = first["base_model"]
    assert "/" in hub_id  # the packaged MiniLM's Hub id
    expected = {"sweep": "v1", "trial": "3f5e02d6", "base_model": hub_id, "hub_base_model": hub_id,
                "base_model_details": first["base_model_details"]}  # fmt: skip
    assert details["fine_tuned_from"] == expected
    second = portable_model_provenance(conf, {})
    card = model_card(conf, {**PROVENANCE, **second}, ["a", "b"])
    assert front_matter(card)["base_model"] == hub_id  # the Hub model at the root
    lineage = f"an export of sweep `v1` (trial `3f5e02d6`), itself fine-tuned from `{hub_id}`"
    assert f"Fine-tuned from `best`, {lineage} on" in card
    # and again: the card named v2 and stopped there (`best`, the folder of every export)
    later = tmp_path / "v2" / "best"
    later.mkdir(parents=True)
    (later / "provenance.json").write_text(
        json.dumps({**PROVENANCE, "sweep": "v2", "trial_id": "0a1b2c3d", **second})
    )
    third = replace(conf, model=ModelConfig(source="pretrained", name_or_path=str(later)))
    card = model_card(third, {**PROVENANCE, **portable_model_provenance(third, {})}, ["a"])
    assert (
        f"Fine-tuned from `best`, an export of sweep `v2` (trial `0a1b2c3d`), itself "
        f"fine-tuned from {lineage} on" in card
    )
    assert front_matter(card)["base_model"] == hub_id
    # a plain local folder or a tiny model is no Hub model: no base_model metadata
    plain = replace(conf, model=ModelConfig(source="pretrained", name_or_path=str(tmp_path)))
    card = model_card(plain, {**PROVENANCE, **portable_model_provenance(plain, {})}, ["a"])
    assert "base_model" not in front_matter(card) and "an export of" not in card
    tiny = make_tiny_config()
    card = model_card(tiny, {**PROVENANCE, **portable_model_provenance(tiny, {})}, ["a"])
    assert "base_model" not in front_matter(card)


def test_hub_ids_without_an_org_and_foreign_provenance(tmp_path: Path) -> None:
    """`roberta-base` is a Hub id too; a provenance.json another tool wrote (or a damaged one)
    is no lineage, and never fails the export."""
    import json

    from automl.export.portable import base_model_name, hub_base_model

    assert hub_base_model({"name": "roberta-base", "source": "hub"}) == "roberta-base"
    assert hub_base_model({"name": "tiny-bert", "source": "tiny (random weights)"}) is None
    folder = tmp_path / "model"
    folder.mkdir()
    local = ModelConfig(source="pretrained", name_or_path=str(folder))
    for foreign in ({"base_model": "x", "base_model_details": "x"}, {"base_model": "x"}, [1]):
        (folder / "provenance.json").write_text(json.dumps(foreign))
        details = base_model_name(local)
        assert details["source"] == "local folder" and "fine_tuned_from" not in details


def test_the_card_gives_the_hub_its_test_scores_and_the_user_its_limits() -> None:
    """The Hub reads a card's scores from `model-index` (the card had them only as prose), and
    a user handed the model needs its limits: the length it reads, the classes it knows, the
    classes its test judged on too few texts or never got right."""
    from huggingface_hub import ModelCard

    per_class = [
        {"label": "a", "precision": 0.9, "recall": 0.95, "f1": 0.92, "support": 40},
        {"label": "b", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 3},
        {"label": "c", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
    ]
    evaluation = {"num_examples": 43, "accuracy": 0.884, "macro_f1": 0.4567,
                  "balanced_accuracy": 0.5, "per_class": per_class}  # fmt: skip
    provenance = {**PROVENANCE, "data": "tickets", "test_evaluation": evaluation}
    conf = make_tiny_config()
    card = model_card(conf, provenance, ["a", "b", "c"])
    results = ModelCard(card).data.eval_results
    assert results is not None
    assert {(r.metric_type, r.metric_value, r.dataset_split) for r in results} == {
        ("accuracy", 0.884, "test"), ("f1", 0.4567, "test")
    }  # fmt: skip
    limits = card.split("## Limitations\n", 1)[1].split("\n## ", 1)[0]
    assert f"at most {conf.model.max_length} tokens" in limits
    assert "only the 3 classes above" in limits
    assert "fewer than 5 held-out texts each, so their test figures say little: `b`." in limits
    assert "Never right on the held-out test: `b`." in limits
    assert "Not in the test split at all: `c`." in limits
    plain = model_card(conf, PROVENANCE, ["a", "b"])  # no test split: no scores to claim
    assert "model-index" not in front_matter(plain) and "## Limitations" in plain
