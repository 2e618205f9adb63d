"""Finished shots -> an OpenTimelineIO timeline, and a timeline -> the shots it holds (no ComfyUI import).

A timeline written here is stock OTIO (Timeline -> Stack -> Track -> Clip), so any OTIO reader
takes it:

- track "V1": one Clip per shot, in order. Each clip has two media references: ``MP4`` (an
  ``ExternalReference``) and, when the shot has EXR frames, ``EXR`` (an ``ImageSequenceReference``:
  start frame, zero padding, rate, available range), the EXR one active. Both references'
  available ranges start at 0, in the clip's own time space, so frame ``f`` of the clip is
  ``start_frame + f`` on disk. The clip's source range is the shot's frames at its exact rate
  (23.976 is written as 24000/1001 = 23.976023976..., a rate OTIO calls a valid timecode rate).
- every keyframe is a Marker on its frame (zero duration), named by its direction;
- track "A1" (only when a Modify/Reframe shot has a source with sound): per shot, the source clip's
  range of frames with its audio, or a Gap as long as the shot;
- ``metadata["director"]`` per clip: engine, model, prompt, credits, job id, colour space, seed,
  version folder, task, exact rate and the source cut. Nothing secret.

Paths are relative to the ``.otio`` file unless ``absolute`` is asked for (then ``file://`` URLs).
``opentimelineio`` is imported only inside the functions that need it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..common.errors import DirectorError
from ..common.paths import atomic_path, claim_version_dir, shown_path
from ..shot.card import parse_rate, rate_text, read_card

MP4_KEY = "MP4"
EXR_KEY = "EXR"
VIDEO_TRACK = "V1"
AUDIO_TRACK = "A1"
DIRECTOR = "director"
DIRECTOR_FIELDS = ("engine", "model", "prompt", "credits", "job_id", "colour_space", "seed", "version_folder",
                   "task")
ADAPTERS = {"edl": ("cmx_3600", "otio-cmx3600-adapter"), "xml": ("fcp_xml", "otio-fcp-adapter")}
"""Extra formats written beside the .otio when OTIO's adapter plugin for them is installed."""
_FRAME_NAME = re.compile(r"^(?P<prefix>.*?)(?P<digits>\d+)(?P<suffix>\.exr)$", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# what a shot is, for the timeline


@dataclass(frozen=True)
class ShotMarker:
    """A keyframe on frame ``frame`` of the shot (0 = its first frame), named by its direction."""

    frame: int
    name: str


@dataclass(frozen=True)
class ExrSequence:
    """A numbered EXR sequence on disk: ``folder/prefix + frame (zero padded) + suffix``."""

    folder: Path
    prefix: str
    suffix: str
    start: int
    padding: int
    count: int

    def file(self, index: int) -> Path:
        return self.folder / f"{self.prefix}{self.start + index:0{self.padding}d}{self.suffix}"


@dataclass(frozen=True)
class SourceCut:
    """The source frames a Modify/Reframe shot was made from (its range and its sound)."""

    path: Path
    start: int
    count: int
    rate: Fraction
    has_audio: bool = False
    total: int = 0
    """Frames in the source file (0: not known)."""


@dataclass(frozen=True)
class Shot:
    """One finished shot: its MP4 (frames ``start`` .. ``start + frame_count - 1`` of it), its EXR
    frames, keyframe markers, the source of a Modify/Reframe shot and what made it."""

    name: str
    video: Path
    frame_count: int
    rate: Fraction
    start: int = 0
    video_frames: int = 0
    exr: ExrSequence | None = None
    markers: tuple[ShotMarker, ...] = ()
    source: SourceCut | None = None
    director: Mapping[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return str(self.director.get("task") or "generate")


def _err(shot: str, fld: str, text: str) -> DirectorError:
    return DirectorError(f"clip '{shot}': {fld}: {text}", field=fld)


def check_rate(name: str, rate: Fraction) -> Fraction:
    """A rate a timeline (and its timecode) can carry; 23.976 -> 24000/1001 exactly."""
    import opentimelineio as otio

    from ..footage.stream import exact_rate

    exact = exact_rate(rate)
    if not otio.opentime.RationalTime.is_valid_timecode_rate(float(exact)):
        raise _err(name, "rate", f"{float(rate):g} fps is not a rate an editorial timeline can carry (use 23.976, "
                                 f"24, 25, 29.97, 30, 48, 50, 59.94 or 60 fps).")
    return exact


def scan_exr(folder: str | Path, *, shot: str = "shot") -> ExrSequence:
    """The sequence in ``folder``: one prefix/suffix, contiguous frame numbers, fixed padding."""
    folder = Path(folder)
    if not folder.is_dir():
        raise _err(shot, "exr", f"the EXR folder '{shown_path(folder)}' does not exist.")
    names = [p.name for p in folder.iterdir() if p.suffix.lower() == ".exr" and not p.name.startswith(".")]
    if not names:
        raise _err(shot, "exr", f"'{shown_path(folder)}' holds no .exr frames.")
    parts = []
    for n in names:
        m = _FRAME_NAME.match(n)
        if m is None:
            raise _err(shot, "exr", f"'{n}' has no frame number.")
        parts.append((m.group("prefix"), m.group("suffix"), m.group("digits")))
    kinds = {(p, s) for p, s, _ in parts}
    if len(kinds) > 1:
        raise _err(shot, "exr", f"'{shown_path(folder)}' holds more than one sequence "
                                f"({', '.join(sorted(p + '#' + s for p, s in kinds))}).")
    numbers = sorted(int(d) for _, _, d in parts)
    padding = min(len(d) for _, _, d in parts)
    if any(len(d) > padding and d[0] == "0" for _, _, d in parts):  # 0998 beside 01001: two paddings
        raise _err(shot, "exr", f"'{shown_path(folder)}' mixes frame-number paddings.")
    first, last = numbers[0], numbers[-1]
    if last - first + 1 != len(numbers):
        missing = sorted(set(range(first, last + 1)) - set(numbers))
        raise _err(shot, "exr", f"frame {missing[0]} is missing from '{shown_path(folder)}' "
                                f"(frames {first}-{last}, {len(missing)} missing).")
    prefix, suffix = next(iter(kinds))
    return ExrSequence(folder=folder, prefix=prefix, suffix=suffix, start=first, padding=padding, count=len(numbers))


def _markers_from_card(card: Mapping[str, Any]) -> tuple[ShotMarker, ...]:
    out = []
    for i, k in enumerate(card.get("keyframes") or ()):
        name = (k.get("direction") or k.get("label") or f"keyframe {i + 1}").strip()
        out.append(ShotMarker(int(k["frame"]), name))
    return tuple(out)


def _markers_from_tags(meta: Mapping[str, str]) -> tuple[ShotMarker, ...]:
    text = (meta or {}).get("director:keyframe_frames", "")
    frames = [int(t) for t in str(text).split(",") if t.strip().lstrip("-").isdigit()]
    return tuple(ShotMarker(f, f"keyframe {i + 1}") for i, f in enumerate(frames))


def shot_from_files(video: str | Path, *, exr: str | Path | None = None, name: str | None = None,
                    start: int = 0, count: int = 0, colour_space: str | None = None,
                    metadata: Mapping[str, str] | None = None) -> Shot:
    """A :class:`Shot` from its files: the MP4 (probed), its shot card when it has one (prompt,
    keyframes, source, credits...), else ``metadata`` (a VIDEO's ``director:*`` tags), and its EXR
    frames (``exr``, or the card's). ``start``/``count`` trim the MP4 (0 = to its end)."""
    from ..footage.stream import probe

    video = Path(video)
    label = name or video.parent.name or video.stem
    if not video.is_file():
        raise _err(label, "video", f"the file '{shown_path(video)}' does not exist.")
    info = probe(video)
    rate = check_rate(label, info.fps)
    card = read_card(video) or {}
    if card.get("rate") and parse_rate(card["rate"]) != rate:
        raise _err(label, "rate", f"the file runs at {rate_text(info.fps)} fps but its card says {card['rate']}.")
    total = info.frame_count
    if not 0 <= start < total:
        raise _err(label, "start", f"frame {start} is outside the file's frames 0-{total - 1}.")
    frames = min(count, total - start) if count else total - start
    markers = _markers_from_card(card) if card else _markers_from_tags(metadata or {})
    markers = tuple(replace(m, frame=m.frame - start) for m in markers if start <= m.frame < start + frames)
    exr_dir = Path(exr) if exr else (video.parent / card["exr_frames"] if card.get("exr_frames") else None)
    seq = scan_exr(exr_dir, shot=label) if exr_dir else None
    if seq is not None and seq.count != total:
        raise _err(label, "exr", f"the EXR sequence has {seq.count} frames, the MP4 {total}; they must be the "
                                 f"same shot frame for frame.")
    source = None
    if card.get("source"):
        s = card["source"]
        src_path = Path(s["path"])
        source = SourceCut(src_path, int(s["start"]), int(s["count"]), parse_rate(s["rate"]), bool(s.get("has_audio")),
                           probe(src_path).frame_count if src_path.is_file() else 0)
    director = {k: card.get(k) for k in DIRECTOR_FIELDS if card.get(k) is not None}
    director.setdefault("engine", (metadata or {}).get("director:engine", ""))
    director.setdefault("task", (metadata or {}).get("director:task", "generate"))
    if colour_space:
        director["colour_space"] = colour_space
    director["version_folder"] = video.parent.name
    return Shot(name=label, video=video, frame_count=frames, rate=rate, start=start, video_frames=total, exr=seq,
                markers=markers, source=source, director=director)


def unique_names(shots: Sequence[Shot]) -> list[Shot]:
    """Clip names must tell shots apart (an editor conforms by name): repeats get ' (2)', ' (3)'."""
    seen: dict[str, int] = {}
    out = []
    for s in shots:
        n = seen.get(s.name, 0) + 1
        seen[s.name] = n
        out.append(s if n == 1 else replace(s, name=f"{s.name} ({n})"))
    return out


# ---------------------------------------------------------------------------------------------
# shots -> OTIO


def _url(path: Path, base: Path, absolute: bool, *, folder: bool = False) -> str:
    import opentimelineio as otio

    path = Path(path).resolve()
    if absolute:
        url = otio.url_utils.url_from_filepath(str(path))
    else:
        url = Path(os.path.relpath(path, base.resolve())).as_posix()
    return url.rstrip("/") + "/" if folder else url


def _path(url: str, base: Path) -> Path:
    import opentimelineio as otio

    if url.startswith("file:"):
        return Path(otio.url_utils.filepath_from_url(url))
    return (base / url).resolve() if not os.path.isabs(url) else Path(url)


def _range(start: int, count: int, rate: Fraction):
    import opentimelineio as otio

    r = float(rate)
    return otio.opentime.TimeRange(otio.opentime.RationalTime(start, r), otio.opentime.RationalTime(count, r))


def _clip(shot: Shot, base: Path, absolute: bool):
    import opentimelineio as otio

    rate = float(shot.rate)
    total = max(shot.video_frames, shot.start + shot.frame_count)
    refs: dict[str, Any] = {
        MP4_KEY: otio.schema.ExternalReference(target_url=_url(shot.video, base, absolute),
                                               available_range=_range(0, total, shot.rate)),
    }
    if shot.exr is not None:
        refs[EXR_KEY] = otio.schema.ImageSequenceReference(
            target_url_base=_url(shot.exr.folder, base, absolute, folder=True), name_prefix=shot.exr.prefix,
            name_suffix=shot.exr.suffix, start_frame=shot.exr.start, frame_step=1, rate=rate,
            frame_zero_padding=shot.exr.padding, available_range=_range(0, shot.exr.count, shot.rate))
    meta = {k: shot.director[k] for k in DIRECTOR_FIELDS if shot.director.get(k) is not None}
    meta["rate"] = rate_text(shot.rate)
    if shot.source is not None:
        s = shot.source
        meta["source"] = {"url": _url(s.path, base, absolute), "start": s.start, "count": s.count,
                          "rate": rate_text(s.rate), "has_audio": s.has_audio, "total": s.total}
    clip = otio.schema.Clip(name=shot.name, source_range=_range(shot.start, shot.frame_count, shot.rate),
                            metadata={DIRECTOR: meta})
    clip.set_media_references(refs, EXR_KEY if shot.exr is not None else MP4_KEY)
    for m in shot.markers:
        clip.markers.append(otio.schema.Marker(
            name=m.name, marked_range=_range(shot.start + m.frame, 0, shot.rate),
            color=otio.schema.MarkerColor.GREEN, metadata={DIRECTOR: {"frame": m.frame}}))
    return clip


def _audio_item(shot: Shot, base: Path, absolute: bool):
    import opentimelineio as otio

    s = shot.source
    if s is None or not s.has_audio:
        return otio.schema.Gap(source_range=_range(0, shot.frame_count, shot.rate))
    return otio.schema.Clip(
        name=f"{shot.name} source audio",
        media_reference=otio.schema.ExternalReference(
            target_url=_url(s.path, base, absolute),
            available_range=_range(0, max(s.total, s.start + s.count), s.rate)),
        source_range=_range(s.start, s.count, s.rate), metadata={DIRECTOR: {"source_of": shot.name}})


def build_timeline(shots: Sequence[Shot], otio_path: str | Path, *, name: str = "", absolute: bool = False):
    """The OTIO Timeline of ``shots`` (in order) for a file at ``otio_path`` (paths relative to it)."""
    import opentimelineio as otio

    if not shots:
        raise DirectorError("shots: the timeline has no clips; connect at least one finished shot.", field="shots")
    base = Path(otio_path).resolve().parent
    shots = unique_names(shots)
    tl = otio.schema.Timeline(name=name or Path(otio_path).stem, metadata={DIRECTOR: {"schema": "director.timeline/1"}})
    video = otio.schema.Track(name=VIDEO_TRACK, kind=otio.schema.TrackKind.Video)
    for s in shots:
        video.append(_clip(s, base, absolute))
    tl.tracks.append(video)
    if any(s.source is not None and s.source.has_audio for s in shots):
        audio = otio.schema.Track(name=AUDIO_TRACK, kind=otio.schema.TrackKind.Audio)
        for s in shots:
            audio.append(_audio_item(s, base, absolute))
        tl.tracks.append(audio)
    return tl


def adapter_formats() -> dict[str, str]:
    """Extra formats whose OTIO adapter plugin is installed here: suffix -> adapter name."""
    import opentimelineio as otio

    have = set(otio.adapters.available_adapter_names())
    return {suffix: name for suffix, (name, _pkg) in ADAPTERS.items() if name in have}


def _mp4_active(tl):
    """A copy with the MP4 active, for FCP 7 XML (its adapter has no image-sequence support). The
    EDL keeps the EXR: the CMX adapter names it ``name.[1001-1121].exr``, the form Resolve relinks."""
    copy = tl.deepcopy()
    for clip in copy.find_clips():
        if MP4_KEY in clip.media_references():
            clip.active_media_reference_key = MP4_KEY
    return copy


def timeline_texts(tl, formats: Iterable[str] = ("edl", "xml")) -> tuple[dict[str, str], dict[str, str]]:
    """``(texts, skipped)``: the timeline as OTIO JSON plus each extra format whose adapter is
    installed and takes it (suffix -> text), and why the others were not written."""
    import opentimelineio as otio

    texts = {"otio": otio.adapters.write_to_string(tl, "otio_json")}
    have = adapter_formats()
    skipped: dict[str, str] = {}
    for suffix in formats:
        adapter, package = ADAPTERS[suffix]
        if suffix not in have:
            skipped[suffix] = f"the {package} plugin is not installed (pip install {package})"
            continue
        try:
            texts[suffix] = otio.adapters.write_to_string(_mp4_active(tl) if suffix == "xml" else tl, adapter)
        except Exception as e:  # noqa: BLE001 - an adapter refusing a timeline must not lose the .otio
            skipped[suffix] = f"{adapter} could not write this timeline: {e}"
    return texts, skipped


@dataclass(frozen=True)
class WrittenTimeline:
    otio: Path
    others: dict[str, Path]
    skipped: dict[str, str]
    clips: int
    frames: int


def write_timeline(shots: Sequence[Shot], out_root: str | Path, prefix: str = "director/timelines/sequence", *,
                   absolute: bool = False, formats: Iterable[str] = ("edl", "xml")) -> WrittenTimeline:
    """Write ``shots`` as ``<prefix>_vNNN/<stem>.otio`` (+ .edl / .xml when their adapters are
    installed) in a NEW version folder inside ``out_root``. Everything is checked and made in memory
    first; each file is written atomically; no existing file is touched."""
    from ..shot.output import output_target

    target = output_target(Path(out_root), prefix)
    stem = target.name
    # Build against the folder the file will be in (same relative paths) before claiming it.
    probe_path = target.parent / f"{stem}_v000" / f"{stem}.otio"
    tl = build_timeline(shots, probe_path, name=stem, absolute=absolute)
    texts, skipped = timeline_texts(tl, formats)
    folder = claim_version_dir(target.parent, stem)
    written: dict[str, Path] = {}
    try:
        for suffix, text in texts.items():
            path = folder / f"{stem}.{suffix}"
            with atomic_path(path) as tmp:
                tmp.write_text(text, encoding="utf-8")
            written[suffix] = path
    except BaseException:
        for p in written.values():
            p.unlink(missing_ok=True)
        folder.rmdir()
        raise
    frames = sum(s.frame_count for s in shots)
    return WrittenTimeline(written.pop("otio"), written, skipped, len(shots), frames)


# ---------------------------------------------------------------------------------------------
# OTIO -> shots


def read_otio(path: str | Path):
    """An OTIO Timeline from a ``.otio`` (or the same JSON under another name); a clear error for
    anything else."""
    import opentimelineio as otio

    path = Path(path)
    if not path.is_file():
        raise DirectorError(f"timeline: '{shown_path(path)}' does not exist.", field="timeline")
    try:
        tl = otio.adapters.read_from_string(path.read_text(encoding="utf-8"), "otio_json")
    except Exception as e:  # noqa: BLE001 - any parse failure is the same user error
        raise DirectorError(f"timeline: '{path.name}' is not an OpenTimelineIO file ({str(e)[:200]}).",
                            field="timeline") from None
    if not isinstance(tl, otio.schema.Timeline):
        raise DirectorError(f"timeline: '{path.name}' holds a {tl.schema_name()}, not a Timeline.", field="timeline")
    return tl


def video_clips(tl) -> list:
    import opentimelineio as otio

    tracks = [t for t in tl.tracks if t.kind == otio.schema.TrackKind.Video]
    if not tracks:
        raise DirectorError("timeline: it has no video track.", field="timeline")
    clips = [c for c in tracks[0] if isinstance(c, otio.schema.Clip)]
    if not clips:
        raise DirectorError("timeline: the video track has no clips.", field="timeline")
    return clips


def _audio_for(tl) -> dict[str, Any]:
    """Audio clips by the shot they belong to (the A1 track written with the timeline)."""
    import opentimelineio as otio

    out = {}
    for track in tl.tracks:
        if track.kind != otio.schema.TrackKind.Audio:
            continue
        for item in track:
            if isinstance(item, otio.schema.Clip):
                owner = (item.metadata.get(DIRECTOR) or {}).get("source_of")
                if owner:
                    out[str(owner)] = item
    return out


def _frames(t, rate: Fraction) -> float:
    return t.rescaled_to(float(rate)).value


def _whole(name: str, fld: str, value: float) -> int:
    if abs(value - round(value)) > 1e-6:
        raise _err(name, fld, f"{value:g} is not a whole frame at the clip's rate.")
    return int(round(value))


def shot_from_clip(clip, base: Path, audio=None, *, check_files: bool = True) -> Shot:
    """The :class:`Shot` a clip describes; every problem a :class:`DirectorError` naming clip and field."""
    import opentimelineio as otio

    name = clip.name or "unnamed clip"
    if clip.source_range is None:
        raise _err(name, "source_range", "the clip has none (a Director clip says which frames it uses).")
    sr = clip.source_range
    meta = dict(clip.metadata.get(DIRECTOR) or {})
    rate = parse_rate(meta["rate"], field="rate") if meta.get("rate") else None
    rate = check_rate(name, rate or Fraction(sr.duration.rate).limit_denominator(1001))
    if abs(float(rate) - sr.duration.rate) > 1e-6:
        raise _err(name, "source_range.rate", f"the range runs at {sr.duration.rate:g} fps but the clip says "
                                              f"{rate_text(rate)}.")
    start = _whole(name, "source_range.start_time", _frames(sr.start_time, rate))
    count = _whole(name, "source_range.duration", _frames(sr.duration, rate))
    if count <= 0:
        raise _err(name, "source_range.duration", "the clip has no frames.")
    refs = clip.media_references()
    mp4 = refs.get(MP4_KEY) or (clip.media_reference if isinstance(clip.media_reference,
                                                                   otio.schema.ExternalReference) else None)
    if not isinstance(mp4, otio.schema.ExternalReference) or not mp4.target_url:
        raise _err(name, f"media_references.{MP4_KEY}", "the clip has no MP4 reference.")
    video = _path(mp4.target_url, base)
    if check_files and not video.is_file():
        raise _err(name, f"media_references.{MP4_KEY}", f"the file '{shown_path(video)}' does not exist.")
    avail = mp4.available_range
    if avail is not None and (start < _frames(avail.start_time, rate) or
                              start + count > _frames(avail.end_time_exclusive(), rate) + 1e-6):
        raise _err(name, "source_range", f"frames {start}-{start + count - 1} run past the MP4's "
                                         f"{int(_frames(avail.duration, rate))} frames.")
    video_frames = int(round(_frames(avail.duration, rate))) if avail is not None else start + count
    seq = None
    exr = refs.get(EXR_KEY)
    if isinstance(exr, otio.schema.ImageSequenceReference):
        folder = _path(exr.target_url_base, base)
        if abs(exr.rate - float(rate)) > 1e-6:
            raise _err(name, f"media_references.{EXR_KEY}.rate", f"{exr.rate:g} fps, the clip runs at "
                                                                  f"{rate_text(rate)}.")
        n = int(round(_frames(exr.available_range.duration, rate))) if exr.available_range else start + count
        seq = ExrSequence(folder, exr.name_prefix, exr.name_suffix, exr.start_frame, exr.frame_zero_padding, n)
        if start + count > n:
            raise _err(name, f"media_references.{EXR_KEY}", f"the clip needs frames up to {start + count - 1}, "
                                                            f"the sequence has {n}.")
        if check_files:
            for idx in (start, start + count - 1):
                if not seq.file(idx).is_file():
                    raise _err(name, f"media_references.{EXR_KEY}", f"frame '{shown_path(seq.file(idx))}' "
                                                                    "does not exist.")
    markers = []
    for m in clip.markers:
        at = _frames(m.marked_range.start_time, rate)
        frame = _whole(name, f"markers['{m.name}']", at) - start
        if not 0 <= frame < count:
            raise _err(name, f"markers['{m.name}']", f"the marker sits on frame {frame}, outside the clip's "
                                                     f"frames 0-{count - 1}.")
        markers.append(ShotMarker(frame, m.name))
    source = None
    src = meta.pop("source", None)
    if src:
        s_path = _path(src["url"], base)
        source = SourceCut(s_path, int(src["start"]), int(src["count"]), parse_rate(src["rate"], field="source.rate"),
                           bool(src.get("has_audio")), int(src.get("total") or 0))
        if audio is not None and source.has_audio:
            ar = audio.source_range
            a_rate = float(source.rate)
            got = (round(ar.start_time.rescaled_to(a_rate).value), round(ar.duration.rescaled_to(a_rate).value))
            if got != (source.start, source.count):
                raise _err(name, "audio", f"the audio clip uses source frames {got[0]}+{got[1]}, the shot was made "
                                          f"from {source.start}+{source.count}.")
    director = {k: meta[k] for k in DIRECTOR_FIELDS if meta.get(k) is not None}
    return Shot(name=name, video=video, frame_count=count, rate=rate, start=start, video_frames=video_frames,
                exr=seq, markers=tuple(markers), source=source, director=director)


def read_shots(path: str | Path, *, check_files: bool = True) -> list[Shot]:
    """Every clip of the timeline as a :class:`Shot` (strict: the first bad clip raises)."""
    tl = read_otio(path)
    base = Path(path).resolve().parent
    audio = _audio_for(tl)
    return [shot_from_clip(c, base, audio.get(c.name), check_files=check_files) for c in video_clips(tl)]


def same_timeline(a, b) -> bool:
    """True when two timelines are the same (OTIO's own deep comparison)."""
    return a.is_equivalent_to(b)
