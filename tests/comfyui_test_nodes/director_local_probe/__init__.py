"""TEST-ONLY custom nodes for the Local engine's real-ComfyUI tests (never part of the pack).

- ``DirectorTestConditioning``: random CONDITIONING of a given width with the ``attention_mask``
  LTX-Video needs (no native node makes one without a real T5 text encoder).
- A probe: ComfyUI's own ``LTXVAddGuide`` and ``WanVaceToVideo`` are wrapped so every call's
  inputs (frame index, strength, image, control video and masks) are appended to
  ``$DIRECTOR_PROBE_LOG`` as JSON lines; the test reads what the native nodes were really given.
  ``VAEDecode`` calls are timed the same way, with the peak VRAM on a GPU (bench/bench_local.py).
"""

import json
import os

import torch

LOG = os.environ.get("DIRECTOR_PROBE_LOG")


class DirectorTestConditioning:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"width": ("INT", {"default": 32, "min": 1, "max": 8192}),
                             "tokens": ("INT", {"default": 8, "min": 1, "max": 512}),
                             "seed": ("INT", {"default": 0, "min": 0, "max": 2 ** 31})}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "make"
    CATEGORY = "testing"

    def make(self, width, tokens, seed):
        g = torch.Generator().manual_seed(seed)
        emb = torch.randn((1, tokens, width), generator=g)
        return ([[emb, {"attention_mask": torch.ones((1, tokens), dtype=torch.long)}]],)


def _log(entry):
    if LOG:
        with open(LOG, "a") as f:
            f.write(json.dumps(entry) + "\n")


def _install_probe():
    import nodes

    add_guide_cls = nodes.NODE_CLASS_MAPPINGS["LTXVAddGuide"]
    vace_cls = nodes.NODE_CLASS_MAPPINGS["WanVaceToVideo"]
    guide = add_guide_cls.execute.__func__

    def add_guide(cls, positive, negative, vae, latent, image, frame_idx, strength, **kw):
        _log({"node": "LTXVAddGuide", "frame_idx": frame_idx, "strength": strength,
              "image_shape": list(image.shape), "image_mean": float(image.mean()),
              "latent_frames": int(latent["samples"].shape[2])})
        return guide(cls, positive, negative, vae, latent, image, frame_idx, strength, **kw)

    add_guide_cls.execute = classmethod(add_guide)
    vace = vace_cls.execute.__func__

    def vace_to_video(cls, positive, negative, vae, width, height, length, batch_size, strength, control_video=None,
                      control_masks=None, reference_image=None):
        kept = [] if control_masks is None else [i for i in range(control_masks.shape[0])
                                                 if float(control_masks[i].max()) == 0.0]
        _log({"node": "WanVaceToVideo", "width": width, "height": height, "length": length,
              "control_frames": None if control_video is None else int(control_video.shape[0]),
              "mask_frames": None if control_masks is None else int(control_masks.shape[0]),
              "kept_frames": kept, "kept_means": [float(control_video[i].mean()) for i in kept],
              "reference": reference_image is not None})
        return vace(cls, positive, negative, vae, width, height, length, batch_size, strength,
                    control_video=control_video, control_masks=control_masks, reference_image=reference_image)

    vace_cls.execute = classmethod(vace_to_video)

    import time

    decode_cls = nodes.NODE_CLASS_MAPPINGS["VAEDecode"]
    decode = decode_cls.decode

    def timed_decode(self, vae, samples):
        t0 = time.perf_counter()
        out = decode(self, vae, samples)
        entry = {"node": "VAEDecode", "seconds": time.perf_counter() - t0, "frames": int(out[0].shape[0])}
        if torch.cuda.is_available():  # the prompt's peak so far (sampling and decode); reset for the next
            entry["peak_vram_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
            torch.cuda.reset_peak_memory_stats()
        _log(entry)
        return out

    decode_cls.decode = timed_decode


_install_probe()
NODE_CLASS_MAPPINGS = {"DirectorTestConditioning": DirectorTestConditioning}
