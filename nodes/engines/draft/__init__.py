"""The Draft engine: a free CPU animatic for timing and composition (no key, no weights, no GPU)."""
