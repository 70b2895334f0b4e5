"""Training engine: checkpoints and the trainer."""
