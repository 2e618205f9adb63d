"""``director timeline``: finished shots (MP4 files or their version folders) -> an .otio timeline,
the same file Timeline Export writes, from the command line (no ComfyUI)."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "timeline", help="write finished shots as an OpenTimelineIO timeline (.otio, + EDL / FCP XML)",
        description="Each SHOT is a shot's MP4, or its version folder (e.g. output/director/shots/shot_v003), "
                    "optionally followed by =EXR_FOLDER for its EXR sequence. Writes OUT/NAME_vNNN/NAME.otio.")
    p.add_argument("shots", nargs="*", metavar="SHOT", help="MP4 or version folder[=EXR folder], in order")
    p.add_argument("--out", default="output", help="folder the timeline's version folder goes in (default: ./output)")
    p.add_argument("--name", default="director/timelines/sequence",
                   help="name inside --out (default: director/timelines/sequence)")
    p.add_argument("--absolute", action="store_true", help="absolute file:// media paths instead of relative ones")
    p.add_argument("--check", metavar="OTIO", help="only read an .otio back and list its shots (no writing)")
    p.set_defaults(run=run)


def shot_video(arg: str) -> tuple[Path, Path | None]:
    """``path[=exr]`` -> (the MP4, the EXR folder or None). A folder means the one MP4 in it."""
    from ..common.errors import DirectorError

    video, _, exr = arg.partition("=")
    path = Path(video)
    if path.is_dir():
        mp4s = sorted(p for p in path.glob("*.mp4") if not p.name.startswith("."))
        if len(mp4s) != 1:
            raise DirectorError(f"shots: '{video}' holds {len(mp4s)} MP4 files; name the one to use.", field="shots")
        path = mp4s[0]
    return path, Path(exr) if exr else None


def run(args) -> int:
    from ..common.errors import DirectorError
    from .timeline import read_shots, shot_from_files, write_timeline

    try:
        if args.check:
            shots = read_shots(args.check)
            for i, s in enumerate(shots):
                print(f"{i + 1:3d} {s.name}: {s.frame_count} frames at {s.rate} fps, {len(s.markers)} markers"
                      f"{', EXR ' + str(s.exr.folder) if s.exr else ''}")
            return 0
        if not args.shots:
            raise DirectorError("shots: name at least one shot (an MP4 or its version folder).", field="shots")
        shots = [shot_from_files(v, exr=e) for v, e in map(shot_video, args.shots)]
        written = write_timeline(shots, Path(args.out).resolve(), args.name, absolute=args.absolute)
    except DirectorError as e:
        print(f"director timeline: {e}")
        return 2
    print(f"{written.otio}: {written.clips} clips, {written.frames} frames")
    for p in written.others.values():
        print(f"{p}")
    for suffix, why in written.skipped.items():
        print(f"no .{suffix}: {why}")
    return 0
