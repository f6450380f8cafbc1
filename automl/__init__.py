"""finetune-automl: hyperparameter search and AutoML for fine-tuning pre-trained transformers."""

__version__ = "0.1.0"
