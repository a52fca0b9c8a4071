"""Parallelism with torch.distributed: a local launcher, data, tensor and pipeline parallelism."""
