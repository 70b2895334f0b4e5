"""Training engine: the trainer, its optimiser and schedule, logs, resumable state and weight averaging (EMA)."""
