"""Director's nodes, one folder per capability.

Each capability folder holds pure modules (no ComfyUI import; tests call them directly)
beside a thin ``nodes.py`` of V3 glue. Nothing here imports ComfyUI at package import time.
"""
