"""Which texts an export trained on, its base model's too. A model fine-tuned again from an
earlier export (new data come in) has seen that export's training texts: a new split's test
texts among them are no held-out score. Kept as short hashes, not the texts (the export may
be handed to people who may not read the data)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl.config.paths import write_text_atomic

log = logging.getLogger(__name__)

TRAINED_TEXTS_FILE = "trained_texts.json"
_KEY = "sha256 of the text with its whitespace collapsed and casefolded, first 16 hex digits"


def text_key(text: str) -> str:
    """A text's key: `Hi  there` and `hi there` are one text (an uncased model reads them so;
    a cased one is judged the cautious way)."""
    return hashlib.sha256(" ".join(text.split()).casefold().encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class BaseTexts:
    """The keys of the texts a base model trained on, and whether they are all of them (an
    export older than the record, or fine-tuned from one, is not complete)."""

    keys: frozenset[str] = frozenset()
    complete: bool = True


NO_BASE = BaseTexts()  # a base model that is no export of this project: nothing it trained on


def write_trained_texts(folder: Path, texts: Iterable[str], base: BaseTexts = NO_BASE) -> None:
    """`folder`'s record: its training texts' keys and those its base model trained on (as
    complete as the base's own record: a model fine-tuned from this one is told so too)."""
    keys = sorted({text_key(t) for t in texts} | base.keys)
    record = {"key": _KEY, "complete": base.complete, "texts": keys}
    write_text_atomic(folder / TRAINED_TEXTS_FILE, json.dumps(record, separators=(",", ":")))


def base_trained_texts(name_or_path: str) -> BaseTexts:
    """The texts the base model trained on, where it is an export of this project (its own
    base's included); none, completely, for any other model; what its record holds, marked
    incomplete, for an export that predates the record, descends from one, or whose record is
    damaged."""
    from automl.export.portable import export_provenance

    folder = Path(name_or_path).expanduser()
    if not folder.is_dir() or export_provenance(folder) is None:
        return BaseTexts()
    try:
        record = json.loads((folder / TRAINED_TEXTS_FILE).read_text(encoding="utf-8"))
        keys = record["texts"]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValueError("not a list of keys")
    except (OSError, ValueError, KeyError, TypeError) as err:
        keys, why = [], f"without a readable {TRAINED_TEXTS_FILE} ({type(err).__name__})"
    else:
        if record.get("key") != _KEY:  # keys made another way would match nothing
            keys, why = [], "whose record's keys are made otherwise"
        elif record.get("complete", True) is not False:
            return BaseTexts(frozenset(keys))
        else:
            why = "fine-tuned from an export whose training texts are not all recorded"
    log.warning(
        "%s: an export of this project %s: not every test text the base model trained on can "
        "be told apart", folder, why,
    )  # fmt: skip
    return BaseTexts(frozenset(keys), complete=False)


def seen_by_base(test_texts: Sequence[str], base: BaseTexts) -> list[bool]:
    """Which test texts the base model is known to have trained on."""
    return [text_key(t) in base.keys for t in test_texts]


def base_note(
    seen_before: Sequence[bool], seen_base: Sequence[bool], base: BaseTexts
) -> dict[str, Any]:
    """What the evaluation records about the base model's training texts: how many test texts
    only it trained on (counted as seen), and whether there may be more."""
    only_base = sum(b and not s for s, b in zip(seen_before, seen_base, strict=True))
    return {
        **({"base_model_trained_on": only_base} if only_base else {}),
        **({} if base.complete else {"base_model_training_texts": "unknown"}),
    }
