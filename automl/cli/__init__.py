"""Thin command-line entry points: `automl-train`, `automl-sweep`, `automl-export`,
`automl-report`. Nothing outside this package imports it."""
