"""The best trial's best epoch -> a plain `transformers` folder with a card and provenance."""

from automl.export.model_dir import export_checkpoint
from automl.export.reexport import ExportError, reexport

__all__ = ["ExportError", "export_checkpoint", "reexport"]
