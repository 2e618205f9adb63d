"""Keyframes: the Keyframe node chain and the Keyframe Timeline (core + ComfyUI glue)."""
