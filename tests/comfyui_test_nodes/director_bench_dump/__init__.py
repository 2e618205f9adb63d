"""TEST-ONLY (bench/bench_animate.py --comfy): ComfyUI's own ``WanAnimateToVideo`` is wrapped so the
first call's inputs (the videos, mask and character image Director prepared, and the size) are saved
as .npy files into ``$DIRECTOR_BENCH_DUMP``; the bench then feeds exactly those to the same native
graph wired by hand. Never part of the pack."""

import json
import os

DUMP = os.environ.get("DIRECTOR_BENCH_DUMP")
NAMES = ("reference_image", "face_video", "pose_video", "background_video", "character_mask")


def _install():
    import nodes
    import numpy as np

    cls = nodes.NODE_CLASS_MAPPINGS.get("WanAnimateToVideo")
    if cls is None or not DUMP:
        return
    run = cls.execute.__func__

    def dumped(klass, positive, negative, vae, width, height, length, batch_size, continue_motion_max_frames,
               video_frame_offset, **kw):
        os.makedirs(DUMP, exist_ok=True)
        facts = os.path.join(DUMP, "facts.json")
        if not os.path.exists(facts):
            for name in NAMES:
                if kw.get(name) is not None:
                    np.save(os.path.join(DUMP, name + ".npy"), kw[name].float().cpu().numpy())
            with open(facts, "w") as f:
                json.dump({"width": width, "height": height, "length": length,
                           "continue_motion_max_frames": continue_motion_max_frames,
                           "video_frame_offset": video_frame_offset}, f)
        return run(klass, positive, negative, vae, width, height, length, batch_size,
                   continue_motion_max_frames=continue_motion_max_frames, video_frame_offset=video_frame_offset, **kw)

    cls.execute = classmethod(dumped)


_install()
NODE_CLASS_MAPPINGS = {}
