"""Metrics: thin wrappers over well-kept libraries (torchmetrics, pycocotools, sacrebleu)."""
