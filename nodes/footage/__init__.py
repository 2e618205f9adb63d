"""Footage: probe, stream, encode and the Load/Save Video nodes (video in and out, never whole in memory)."""
