"""MLflow from the driver only: a parent run per sweep, a child run per trial, the registry."""
