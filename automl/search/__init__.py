"""The search: the sweep's plan (everything checked before compute), Ray Tune running trials
that Optuna samplers choose, the Ray trial function, stopping rules, resources and resume.

`run_sweep` is imported from `automl.search.sweep` (it pulls in Ray)."""
