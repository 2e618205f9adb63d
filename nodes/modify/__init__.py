"""Modify Video: restyle footage while the performance, structure and camera motion survive."""
