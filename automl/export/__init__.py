"""The best trial's best epoch -> a plain `transformers` folder with a card and provenance;
an export scored again on new labelled data (rescore.py)."""

from automl.export.model_dir import export_checkpoint
from automl.export.reexport import ExportError, reexport

__all__ = ["ExportError", "export_checkpoint", "reexport"]
