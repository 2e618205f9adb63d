"""The keyframe timeline: a versioned JSON document that places keyframes on the 24 fps grid.

The ``timeline`` STRING input of the Keyframe Timeline node is the single source of truth for
where keyframes sit; the browser widget only edits that text, so a headless queue and a shared
workflow file carry everything. Schema version 1::

    {"v": 1, "keyframes": [
      {"id": "image:0", "frame": 0},
      {"id": "chain:1", "frame": 48, "direction": "she turns to the window", "strength": 0.8},
      {"id": "image:3", "skip": true},
      {"id": "text:0", "frame": 96, "direction": "the camera pulls back", "hold": 0.5}
    ]}

Ids are stable references, counted from 0: ``chain:N`` is the Nth keyframe of the incoming
keyframe chain, ``image:N`` the Nth image of the incoming batch, ``text:N`` a direction-only
keyframe that lives in the timeline itself. Every field but ``id`` is optional for chain and
image keyframes: ``frame`` (a whole frame, 0 .. last frame), ``direction``, ``strength`` (0..1),
``hold`` (seconds), ``skip`` (leave this keyframe out). A text keyframe needs ``frame`` and
``direction``. A chain keyframe or image the JSON does not mention keeps its default place: a
chain keyframe its own position, batch images spread evenly from frame 0 to the last frame.
An empty text, ``{}`` or an empty list means "all defaults".

:func:`serialize_timeline` writes one canonical text (one keyframe per line, sorted by frame,
fixed key order) that ``web/js/timeline_core.js`` reproduces byte for byte, so a round trip
through the widget never changes a timeline the user did not touch.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..common.errors import DirectorError, ShotError
from .grid import (
    DURATIONS,
    FPS,
    KEYFRAMES_API_MAX,
    KEYFRAMES_DEFAULT_MAX,
    KeyframeSpec,
    last_frame,
    position_to_frame,
    resolve_keyframes,
)

SCHEMA_VERSION = 1
SOURCES = ("chain", "image", "text")
ENTRY_FIELDS = ("id", "frame", "direction", "strength", "hold", "skip")
_ID = re.compile(r"^(chain|image|text):(0|[1-9][0-9]{0,5})$")
_ID_HELP = ('use "chain:N" (the Nth keyframe of the chain), "image:N" (the Nth image of the batch) '
            'or "text:N" (a direction-only keyframe), counting from 0')
FIELD = "timeline"


@dataclass(frozen=True)
class TimelineEntry:
    """What the timeline JSON says about one keyframe; None means "not set, use the default"."""

    id: str
    frame: float | None = None
    direction: str | None = None
    strength: float | None = None
    hold: float | None = None
    skip: bool = False

    @property
    def source(self) -> str:
        return self.id.split(":", 1)[0]

    @property
    def index(self) -> int:
        return int(self.id.split(":", 1)[1])


@dataclass(frozen=True)
class Timeline:
    entries: tuple[TimelineEntry, ...] = ()

    def get(self, id: str) -> TimelineEntry | None:
        return next((e for e in self.entries if e.id == id), None)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def parse_timeline(text: str | Mapping | None) -> Timeline:
    """Parse and type-check timeline JSON (text or an already decoded dict).

    Raises :class:`ShotError` (field ``timeline``) naming the keyframe at fault. Positions are
    checked against the clip later, in :func:`arrange`, where the clip length is known.
    """
    if text is None:
        return Timeline()
    if isinstance(text, str):
        if not text.strip():
            return Timeline()
        try:
            doc = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as e:
            raise ShotError(f"timeline: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}).", field=FIELD) from None
        except ValueError as e:
            raise ShotError(f"timeline: not valid JSON ({e}).", field=FIELD) from None
    else:
        doc = text
    if isinstance(doc, list):
        doc = {"keyframes": doc}
    if not isinstance(doc, Mapping):
        raise ShotError('timeline: expected a JSON object like {"v": 1, "keyframes": [...]}, '
                        f"got {type(doc).__name__}.", field=FIELD)
    unknown = sorted(set(doc) - {"v", "keyframes"})
    if unknown:
        raise ShotError(f"timeline: unknown field '{unknown[0]}' (fields: v, keyframes).", field=FIELD)
    version = doc.get("v", SCHEMA_VERSION)
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise ShotError(f"timeline: schema version {version!r} is not supported (this Director reads version "
                        f"{SCHEMA_VERSION}).", field=FIELD)
    raw = doc.get("keyframes", [])
    if not isinstance(raw, list):
        raise ShotError(f'timeline: "keyframes" must be a list, got {type(raw).__name__}.', field=FIELD)
    entries: list[TimelineEntry] = []
    seen: set[str] = set()
    for n, item in enumerate(raw, 1):
        entries.append(_parse_entry(item, n, seen))
    return Timeline(tuple(entries))


def _parse_entry(item: Any, n: int, seen: set[str]) -> TimelineEntry:
    if not isinstance(item, Mapping):
        raise ShotError(f'timeline: entry {n} must be an object with an "id", got {json.dumps(item)[:60]}.', field=FIELD)
    kid = item.get("id")
    if not isinstance(kid, str) or not _ID.match(kid):
        shown = json.dumps(kid) if kid is not None else "nothing"
        raise ShotError(f"timeline: entry {n} has id {shown}; {_ID_HELP}.", field=FIELD)
    label = f"keyframe {kid}"
    if kid in seen:
        raise ShotError(f"{label}: listed twice in the timeline; keep one entry per keyframe.", field=FIELD)
    seen.add(kid)
    unknown = sorted(set(item) - set(ENTRY_FIELDS))
    if unknown:
        raise ShotError(f"{label}: unknown field '{unknown[0]}' (fields: {', '.join(ENTRY_FIELDS)}).", field=FIELD)

    def number(key: str) -> float | None:
        v = item.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ShotError(f'{label}: "{key}" must be a number, got {json.dumps(v)}.', field=FIELD)
        return v

    direction = item.get("direction")
    if direction is not None and not isinstance(direction, str):
        raise ShotError(f'{label}: "direction" must be text, got {json.dumps(direction)}.', field=FIELD)
    skip = item.get("skip", False)
    if not isinstance(skip, bool):
        raise ShotError(f'{label}: "skip" must be true or false, got {json.dumps(skip)}.', field=FIELD)
    entry = TimelineEntry(id=kid, frame=number("frame"), direction=direction, strength=number("strength"),
                          hold=number("hold"), skip=skip)
    if entry.source == "text":
        if entry.skip:
            raise ShotError(f'{label}: a direction-only keyframe cannot be skipped; delete its entry instead.', field=FIELD)
        if entry.frame is None:
            raise ShotError(f'{label}: a direction-only keyframe needs a "frame".', field=FIELD)
    return entry


def format_number(x: float) -> str:
    """A number as the canonical text writes it (mirrors ``formatNumber`` in timeline_core.js)."""
    x = float(x)
    if x.is_integer():
        return str(int(x))
    return repr(x)  # shortest round-trip digits; JS writes the same for 1e-4 <= |x| < 1e16


def _entry_text(e: TimelineEntry) -> str:
    parts = [f'"id": {json.dumps(e.id)}']
    if e.frame is not None:
        parts.append(f'"frame": {format_number(e.frame)}')
    if e.direction is not None:
        parts.append(f'"direction": {json.dumps(e.direction, ensure_ascii=False)}')
    if e.strength is not None:
        parts.append(f'"strength": {format_number(e.strength)}')
    if e.hold is not None:
        parts.append(f'"hold": {format_number(e.hold)}')
    if e.skip:
        parts.append('"skip": true')
    return "{" + ", ".join(parts) + "}"


def entry_order(e: TimelineEntry) -> tuple:
    """Canonical order: placed keyframes by frame, then the rest; ties by source and index."""
    return (e.frame is None, e.frame if e.frame is not None else 0, SOURCES.index(e.source), e.index)


def serialize_timeline(timeline: Timeline) -> str:
    """The canonical text of a timeline (stable: parse -> serialize -> parse is the identity)."""
    if not timeline.entries:
        return f'{{"v": {SCHEMA_VERSION}, "keyframes": []}}'
    lines = ",\n".join("  " + _entry_text(e) for e in sorted(timeline.entries, key=entry_order))
    return f'{{"v": {SCHEMA_VERSION}, "keyframes": [\n{lines}\n]}}'


def default_frames(count: int, duration: int) -> list[int]:
    """Frames for ``count`` batch images spread evenly from frame 0 to the last frame, rounded
    to the nearest frame with halves up (16 images in 5 s: 0, 8, 16, ..., 120)."""
    end = last_frame(duration)
    if count <= 0:
        return []
    if count == 1:
        return [0]
    return [(2 * i * end + (count - 1)) // (2 * (count - 1)) for i in range(count)]


@dataclass(frozen=True, eq=False)
class TimelineItem:
    """One keyframe as the timeline arranges it: what goes downstream and where it is drawn."""

    id: str
    source: str
    spec: KeyframeSpec
    base: KeyframeSpec
    frame: int
    default_frame: int | None
    placed: bool
    skipped: bool


def _check_references(timeline: Timeline, n_chain: int, n_images: int) -> None:
    for e in timeline.entries:
        if e.skip:
            continue  # a skipped keyframe whose source went away changes nothing
        if e.source == "chain" and e.index >= n_chain:
            have = f"the chain holds {n_chain} keyframe{'s' if n_chain != 1 else ''}" if n_chain else "no keyframe chain is connected"
            raise ShotError(f"keyframe {e.id}: the timeline places keyframe {e.index} of the chain (counting from 0), "
                            f"but {have}. Reset or delete it in the timeline, or connect the chain.", field=FIELD)
        if e.source == "image" and e.index >= n_images:
            have = f"the batch has {n_images} image{'s' if n_images != 1 else ''}" if n_images else "no images are connected"
            raise ShotError(f"keyframe {e.id}: the timeline places image {e.index} of the batch (counting from 0), "
                            f"but {have}. Reset or delete it in the timeline, or connect more images.", field=FIELD)


def _frame_for_view(position: float, unit: str, duration: int, label: str, strict: bool) -> int:
    """Where a keyframe is drawn; out-of-clip positions raise unless the keyframe is skipped."""
    try:
        return position_to_frame(position, unit, duration, label=label)
    except ShotError:
        if strict:
            raise
        end = last_frame(duration)
        scale = {"frame": 1.0, "seconds": FPS, "fraction": end}.get(unit, 1.0)
        return int(min(max(math.floor(float(position) * scale + 0.5), 0), end))


def arrange(
    timeline: Timeline,
    duration: int,
    *,
    chain: Sequence[KeyframeSpec] = (),
    images: Sequence[np.ndarray] = (),
    max_keyframes: int = KEYFRAMES_DEFAULT_MAX,
) -> tuple[TimelineItem, ...]:
    """Merge the chain, the image batch and the timeline JSON into keyframes, sorted by frame.

    Checks everything the product rules ask (nodes/shot/request.py): every keyframe inside the
    clip, unique frames, at most ``max_keyframes``, strength and hold ranges, and that each
    keyframe has an image or a direction. Errors name the keyframe by its timeline id.
    Placed keyframes go downstream as frames (unit "frame"); unplaced chain keyframes keep
    their own position and unit.
    """
    if duration not in DURATIONS:
        raise ShotError(f"duration: {duration} s is not available; use 5 or 10 s.", field="duration")
    if not 1 <= int(max_keyframes) <= KEYFRAMES_API_MAX:
        raise ShotError(f"max_keyframes: {max_keyframes} is outside 1..{KEYFRAMES_API_MAX}.", field="max_keyframes")
    chain = tuple(chain or ())
    if any(not isinstance(k, KeyframeSpec) for k in chain):
        raise ShotError("keyframes: the chain holds something that is not a Director keyframe.", field="keyframes")
    _check_references(timeline, len(chain), len(images))
    items: list[TimelineItem] = []

    def place(kid: str, source: str, base: KeyframeSpec, default_frame: int | None) -> None:
        e = timeline.get(kid)
        skipped = bool(e and e.skip)
        label = base.label
        if e is not None and e.frame is not None:
            spec_pos, spec_unit = e.frame, "frame"
        else:
            spec_pos, spec_unit = base.position, base.unit
        frame = _frame_for_view(spec_pos, spec_unit, duration, label, strict=not skipped)
        spec = KeyframeSpec(
            position=spec_pos, unit=spec_unit, image=base.image,
            direction=e.direction if e is not None and e.direction is not None else base.direction,
            strength=e.strength if e is not None and e.strength is not None else base.strength,
            hold=e.hold if e is not None and e.hold is not None else base.hold,
            label=label,
        )
        items.append(TimelineItem(kid, source, spec, base, frame, default_frame, placed=e is not None, skipped=skipped))

    for i, k in enumerate(chain):
        kid = f"chain:{i}"
        label = f"keyframe {kid}" + (f" ({k.label})" if k.label else "")
        base = KeyframeSpec(k.position, k.unit, k.image, k.direction, k.strength, k.hold, label)
        own = _frame_for_view(k.position, k.unit, duration, label, strict=False)
        place(kid, "chain", base, own)
    for i, (img, frame) in enumerate(zip(images, default_frames(len(images), duration))):
        kid = f"image:{i}"
        place(kid, "image", KeyframeSpec(frame, "frame", img, "", 1.0, 0.0, f"keyframe {kid}"), frame)
    for e in timeline.entries:
        if e.source == "text":
            place(e.id, "text", KeyframeSpec(e.frame, "frame", None, "", 1.0, 0.0, f"keyframe {e.id}"), None)

    active = sorted((it for it in items if not it.skipped), key=lambda it: it.frame)
    if len(active) > max_keyframes:
        extra = active[max_keyframes]
        raise ShotError(
            f"timeline: {len(active)} keyframes, the limit is {max_keyframes}; {extra.spec.label} at frame "
            f"{extra.frame} is number {max_keyframes + 1}. Skip keyframes in the timeline, connect fewer images"
            + (f", or raise max_keyframes (up to {KEYFRAMES_API_MAX})." if max_keyframes < KEYFRAMES_API_MAX else "."),
            field=FIELD,
        )
    resolve_keyframes([it.spec for it in active], duration, max_keyframes=max_keyframes)
    order = {s: n for n, s in enumerate(SOURCES)}
    return tuple(sorted(items, key=lambda it: (it.frame, it.skipped, order[it.source], int(it.id.split(":")[1]))))


def keyframes_of(items: Sequence[TimelineItem]) -> tuple[KeyframeSpec, ...]:
    """The DIRECTOR_KEYFRAMES value: the keyframes that are not skipped, in frame order."""
    return tuple(it.spec for it in items if not it.skipped)


def timeline_view(items: Sequence[TimelineItem], duration: int, thumbs: Mapping[str, Mapping] | None = None) -> dict:
    """What the widget draws after a run (sent in the node's ui output; plain JSON values)."""
    thumbs = thumbs or {}
    out = []
    for it in items:
        img = it.spec.image
        out.append({
            "id": it.id, "source": it.source, "label": it.spec.label, "frame": it.frame,
            "default_frame": it.default_frame, "placed": it.placed, "skip": it.skipped,
            "direction": it.spec.direction, "strength": it.spec.strength, "hold": it.spec.hold,
            "default": {"position": it.base.position, "unit": it.base.unit, "frame": it.default_frame,
                        "direction": it.base.direction, "strength": it.base.strength, "hold": it.base.hold},
            "width": int(img.shape[1]) if img is not None else None,
            "height": int(img.shape[0]) if img is not None else None,
            "thumb": dict(thumbs[it.id]) if it.id in thumbs else None,
        })
    return {"v": SCHEMA_VERSION, "duration": duration, "fps": FPS, "last_frame": last_frame(duration), "keyframes": out}


def thumbnail_jpeg(image: np.ndarray, size: int = 128, quality: int = 85) -> bytes:
    """A small sRGB JPEG of an image (long edge ``size`` px; HDR values clipped for display)."""
    from io import BytesIO

    from PIL import Image

    img = np.asarray(image)[..., :3]
    h, w = img.shape[:2]
    scale = min(1.0, size / max(h, w))
    step = max(1, int(1.0 / scale) // 2)  # cheap decimation first: never converts a full 4K frame
    small = np.clip(np.asarray(img[::step, ::step], dtype=np.float32), 0.0, 1.0)
    pil = Image.fromarray((small * 255.0 + 0.5).astype(np.uint8), "RGB")
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    pil = pil.resize((tw, th), Image.Resampling.LANCZOS)
    buf = BytesIO()
    pil.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def write_thumbnail(image: np.ndarray, folder: Path, size: int = 128) -> str:
    """Write the thumbnail of ``image`` into ``folder`` under a name made from its content and
    return the file name. An identical thumbnail already there is reused, never rewritten."""
    from ..common.paths import atomic_path, ensure_writable_dir

    data = thumbnail_jpeg(image, size)
    name = f"kf_{hashlib.sha1(data).hexdigest()[:20]}.jpg"
    folder = ensure_writable_dir(Path(folder), field="thumbnails")
    final = folder / name
    if not final.exists():
        try:
            with atomic_path(final) as tmp:
                tmp.write_bytes(data)
        except DirectorError:
            if not final.exists():
                raise  # (when it exists, another run wrote the same thumbnail meanwhile: fine)
    return name
