"""L4: batch and online scoring and model artifacts."""
