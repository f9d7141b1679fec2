"""Kubeflow Pipelines: a function's component file, and the job door's side of its contract."""
