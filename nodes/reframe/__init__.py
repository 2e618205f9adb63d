"""Reframe: a clip expanded to a new aspect ratio with the source placed anywhere in the frame."""
