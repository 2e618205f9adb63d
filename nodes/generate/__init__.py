"""The Generate Video node: one shot request to any engine, a file-backed VIDEO out."""
