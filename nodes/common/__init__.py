"""Helpers shared by every capability: errors, safe output paths, progress and cancellation."""
