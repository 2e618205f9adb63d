"""Motion source: face, pose and camera tracks extracted from footage, and the DIRECTOR_MOTION contract."""
