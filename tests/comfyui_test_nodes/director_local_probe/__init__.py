"""TEST-ONLY custom nodes for the Local engine's real-ComfyUI tests (never part of the pack).

- ``DirectorTestConditioning``: random CONDITIONING of a given width with the ``attention_mask``
  LTX-Video needs (no native node makes one without a real T5 text encoder).
- ``DirectorTestClipVision``: a tiny random CLIP vision model (ComfyUI's own ``ClipVisionModel``) in place
  of clip_vision_h, which CLIPVisionLoader cannot give small (it picks the config from a real checkpoint's
  layer count). Width 1280 and 224 px / 14 px patches as clip_vision_h, since Wan's ``img_emb`` takes
  1280-wide features (257 tokens); 2 layers instead of 32, a narrow MLP. ``width`` makes a model of
  another width (ViT-L's 1024) to check it is refused.
- A probe: ComfyUI's own ``LTXVAddGuide`` and ``WanVaceToVideo`` are wrapped so every call's
  inputs (frame index, strength, image, control video and masks) are appended to
  ``$DIRECTOR_PROBE_LOG`` as JSON lines (``WanAnimateToVideo``: the shapes of every video it takes); the test
  reads what the native nodes were really given (``WanAnimateToVideo``: also the clip_vision_output's
  shape and identity; ``CLIPVisionEncode``: each call). ``VAEDecode`` calls are timed the same way, with the peak
  VRAM on a GPU (bench/bench_local.py).
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


TINY_CLIP_VISION = {"hidden_size": 1280, "image_size": 224, "patch_size": 14, "num_channels": 3,
                    "num_hidden_layers": 2, "num_attention_heads": 16, "intermediate_size": 256,
                    "hidden_act": "gelu", "layer_norm_eps": 1e-5, "projection_dim": 32,
                    "model_type": "clip_vision_model"}


class DirectorTestClipVision:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": ("INT", {"default": 0, "min": 0, "max": 2 ** 31}),
                             "width": ("INT", {"default": 1280, "min": 64, "max": 2048, "step": 64})}}

    RETURN_TYPES = ("CLIP_VISION",)
    FUNCTION = "make"
    CATEGORY = "testing"

    def make(self, seed, width=1280):
        import comfy.clip_vision

        model = comfy.clip_vision.ClipVisionModel(dict(TINY_CLIP_VISION, hidden_size=width))
        g = torch.Generator().manual_seed(seed)
        sd = {k: torch.ones_like(v) if "norm" in k and k.endswith("weight")
              else torch.randn(v.shape, generator=g) * 0.02 for k, v in model.get_sd().items()}
        missing, _ = model.load_sd(sd)
        assert not missing, missing
        return (model,)


def _log(entry):
    if LOG:
        with open(LOG, "a") as f:
            f.write(json.dumps(entry) + "\n")


def _clip_vision(out):
    """The shape Wan's img_emb takes (penultimate hidden states) and a fingerprint of the values."""
    if out is None:
        return None
    states = out["penultimate_hidden_states"]
    return {"shape": list(states.shape), "sum": round(float(states.double().sum()), 3), "id": id(out)}


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

    animate_cls = nodes.NODE_CLASS_MAPPINGS.get("WanAnimateToVideo")
    if animate_cls is not None:
        animate = animate_cls.execute.__func__

        def animate_to_video(cls, positive, negative, vae, width, height, length, batch_size,
                             continue_motion_max_frames, video_frame_offset, **kw):
            def shape(name):
                v = kw.get(name)
                return None if v is None else list(v.shape)

            pose = kw.get("pose_video")
            _log({"node": "WanAnimateToVideo", "width": width, "height": height, "length": length,
                  "continue_motion_max_frames": continue_motion_max_frames, "video_frame_offset": video_frame_offset,
                  **{name: shape(name) for name in ("reference_image", "face_video", "pose_video", "background_video",
                                                    "character_mask", "continue_motion")},
                  "clip_vision_output": _clip_vision(kw.get("clip_vision_output")),
                  "pose_lit": None if pose is None else [float((pose[i] > 0.1).any(dim=-1).float().mean())
                                                         for i in range(pose.shape[0])]})
            out = animate(cls, positive, negative, vae, width, height, length, batch_size,
                          continue_motion_max_frames, video_frame_offset, **kw)
            _log({"node": "WanAnimateToVideo.out", "trim_latent": int(out.result[3]), "trim_image": int(out.result[4]),
                  "video_frame_offset": int(out.result[5])})
            return out

        animate_cls.execute = classmethod(animate_to_video)

    encode_cls = nodes.NODE_CLASS_MAPPINGS["CLIPVisionEncode"]
    encode = encode_cls.encode

    def logged_encode(self, clip_vision, image, crop):
        out = encode(self, clip_vision, image, crop)
        _log({"node": "CLIPVisionEncode", "crop": crop, "image": list(image.shape), "output": _clip_vision(out[0])})
        return out

    encode_cls.encode = logged_encode

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
NODE_CLASS_MAPPINGS = {"DirectorTestConditioning": DirectorTestConditioning,
                       "DirectorTestClipVision": DirectorTestClipVision}
