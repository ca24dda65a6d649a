"""Training CLI, evaluator and atlas export for the shipped checkpoints."""
