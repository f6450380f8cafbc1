"""Data: load a labelled text task (packaged default, CSV/JSONL, Hugging Face datasets), split it
(stratified, seeded), tokenize it once, and batch it by length for training."""

from automl.data.load import load_task_data
from automl.data.prepare import prepare_data
from automl.data.split import stratified_sample, stratified_split
from automl.data.task import DataError, LabeledTexts, TaskData
from automl.data.tokenized import PreparedData, TokenizedSplit, tokenize

__all__ = [
    "DataError", "LabeledTexts", "PreparedData", "TaskData", "TokenizedSplit", "load_task_data",
    "prepare_data", "stratified_sample", "stratified_split", "tokenize",
]  # fmt: skip
