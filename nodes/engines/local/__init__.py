"""The Local engine: Director shots as native ComfyUI LTX-Video / Wan VACE subgraphs."""
