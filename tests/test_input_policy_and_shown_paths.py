"""What files Load Video may read (checked by the pack itself) and how errors name files (never the
server's layout)."""

from __future__ import annotations

import os

import pytest
from refusals import refusal

import comfy_stub
from comfyui_director.nodes.common import glue
from comfyui_director.nodes.common.errors import DirectorError, ShotError
from comfyui_director.nodes.common.inputs import InputRoots, resolve_choice
from comfyui_director.nodes.common.paths import set_named_roots, shown_path
from comfyui_director.nodes.engines.luma.transport import LumaRejected
from comfyui_director.nodes.footage.nodes import DirectorLoadVideo
from comfyui_director.nodes.footage.stream import FootageRef, exr_files, probe
from media import make_clip


def comfy_type_name(klass) -> str:
    """What ComfyUI shows beside an error (execution.full_type_name)."""
    return klass.__qualname__ if klass.__module__ == "builtins" else f"{klass.__module__}.{klass.__qualname__}"


@pytest.fixture
def core_without_its_check(monkeypatch):
    """A ComfyUI core whose annotated-path lookup does no containment check: the pack must not rely on it."""
    def unchecked(name, default_dir=None):
        return os.path.abspath(comfy_stub._annotated(name, default_dir))
    monkeypatch.setattr(comfy_stub.folder_paths, "get_annotated_filepath", unchecked)


@pytest.mark.parametrize("name", ["../outside.mp4", "../output/render.mp4", "sub/../../outside.mp4"])
def test_load_video_refuses_a_choice_that_climbs_out_of_the_input_folder(comfy_dirs, core_without_its_check, name):
    make_clip(comfy_dirs / "outside.mp4", 32, 18, frames=2)
    make_clip(comfy_dirs / "output" / "render.mp4", 32, 18, frames=2)
    msg = refusal(DirectorLoadVideo.validate_inputs, video=name)
    assert isinstance(msg, str) and "video:" in msg and "'..'" in msg
    with pytest.raises(DirectorError) as e:
        DirectorLoadVideo.execute(video=name)
    assert e.value.field == "video"


def test_load_video_refuses_an_absolute_choice_and_a_symlink_out_of_the_input_folder(comfy_dirs,
                                                                                      core_without_its_check):
    outside = make_clip(comfy_dirs / "outside.mp4", 32, 18, frames=2)
    os.symlink(outside, comfy_dirs / "input" / "link.mp4")
    for name, words in ((str(outside), "absolute path"), ("link.mp4", "resolves outside the input folder")):
        msg = refusal(DirectorLoadVideo.validate_inputs, video=name)
        assert isinstance(msg, str) and words in msg, (name, msg)


def test_annotated_choices_and_samples_resolve_inside_their_own_folder(comfy_dirs):
    clip = make_clip(comfy_dirs / "output" / "render.mp4", 32, 18, frames=2)
    roots = glue.input_roots()
    assert resolve_choice("render.mp4 [output]", roots) == clip.resolve()
    samples = comfy_dirs / "samples"
    samples.mkdir()
    sample = make_clip(samples / "s.mp4", 32, 18, frames=2)
    with_samples = InputRoots(roots.input, roots.output, roots.temp, samples)
    assert resolve_choice("director-samples/s.mp4", with_samples) == sample.resolve()
    with pytest.raises(DirectorError, match="'..'"):
        resolve_choice("director-samples/../output/render.mp4", with_samples)


def test_errors_name_files_relative_to_comfy_folders_not_by_server_path(comfy_dirs):
    bad = comfy_dirs / "input" / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(DirectorError) as e:
        DirectorLoadVideo.execute(video="broken.mp4")
    text = str(e.value)
    assert "'input/broken.mp4'" in text and str(comfy_dirs) not in text
    with pytest.raises(DirectorError) as e:
        exr_files(comfy_dirs / "output" / "shots" / "missing")
    assert "'output/shots/missing'" in str(e.value) and str(comfy_dirs) not in str(e.value)


def test_shown_path_without_comfy_folders_gives_only_the_name(tmp_path, monkeypatch):
    set_named_roots(None)
    try:
        monkeypatch.chdir(tmp_path)
        assert shown_path(tmp_path / "a" / "b.mp4") == "a/b.mp4"
        assert shown_path("/somewhere/else/c.mp4") == "c.mp4"
    finally:
        set_named_roots(glue._named_roots)
    with pytest.raises(DirectorError) as e:
        probe("/somewhere/else/c.mp4")
    assert "'c.mp4'" in str(e.value) and "/somewhere" not in str(e.value)


@pytest.mark.parametrize("klass", [DirectorError, ShotError, LumaRejected])
def test_error_type_comfyui_shows_is_a_short_public_name(klass):
    assert comfy_type_name(klass) == f"director.{klass.__name__}"


def test_validation_helper_turns_a_refusal_into_the_message_comfyui_shows():
    def refuse():
        raise ShotError("duration: '7 s' is not one of 5 s, 10 s.", field="duration")
    assert glue.validation(lambda: None) is True
    assert glue.validation(refuse) == "duration: '7 s' is not one of 5 s, 10 s."
    assert glue.validation(FootageRef, "x", colourspace="y") is True
    # several inputs: raised once (ComfyUI would repeat a returned message once per input)
    assert glue.refusal(lambda: None) is True
    with pytest.raises(DirectorError, match=r"^duration: '7 s' is not one of 5 s, 10 s\.$"):
        glue.refusal(refuse)
    with pytest.raises(DirectorError, match="plain"):
        glue.refusal(lambda: (_ for _ in ()).throw(ValueError("plain")))


def test_director_errors_still_pickle_across_processes():
    import pickle

    from comfyui_director.nodes.common.errors import Cancelled

    errors = (ShotError("duration: no.", field="duration"), LumaRejected("Luma engine: refused.", status=422),
              Cancelled("stop"))
    for err in errors:
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and back.args == err.args
        assert getattr(back, "field", None) == getattr(err, "field", None)
        assert getattr(back, "status", None) == getattr(err, "status", None)


def test_luma_engine_status_line_names_the_ledger_inside_the_user_folder(comfy_dirs, monkeypatch):
    import json

    from comfyui_director.nodes.engines.luma.nodes import DirectorLumaEngine

    monkeypatch.setenv("LUMA_AGENTS_API_KEY", "luma-api-test-key-for-the-status-line")
    monkeypatch.setenv("LUMA_BASE_URL", "http://127.0.0.1:9/v1")
    shown = json.dumps(DirectorLumaEngine.execute().ui)
    assert "user/director/luma_jobs.sqlite3" in shown and str(comfy_dirs) not in shown
