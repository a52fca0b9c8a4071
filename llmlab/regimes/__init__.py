"""Learning regimes beyond one training run on clean data: cross-validation, noisy labels, augmentation,
multi-task heads, continual learning with replay, and scaling laws."""
