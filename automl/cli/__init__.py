"""Thin command-line entry points: `automl-train`, `automl-sweep`, `automl-export`,
`automl-report`, `automl-reproduce`, `automl-evaluate`. Nothing outside this package imports it."""
