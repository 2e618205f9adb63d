"""Output paths: inside their root, never over existing work, atomic."""

from __future__ import annotations

import os

import pytest

from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.common.paths import (
    atomic_path, claim_version_dir, ensure_writable_dir, resolve_inside, safe_relative,
)


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "/etc/passwd", "C:/x", "", "  ", "a/\x00b"])
def test_names_that_escape_or_are_empty_are_refused(bad, tmp_path):
    with pytest.raises(DirectorError, match="filename_prefix"):
        resolve_inside(tmp_path, bad)


def test_normal_names_stay_inside(tmp_path):
    assert resolve_inside(tmp_path, "shots/sh010/plate") == (tmp_path / "shots/sh010/plate").resolve()
    assert str(safe_relative("a\\b/./c")) == "a/b/c"


def test_symlink_escape_is_refused(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(DirectorError, match="outside"):
        resolve_inside(tmp_path / "root", "link/x")


def test_version_folders_never_reuse_an_existing_one(tmp_path):
    a = claim_version_dir(tmp_path, "plate")
    (a / "keep.txt").write_text("first")
    b = claim_version_dir(tmp_path, "plate")
    assert (a.name, b.name) == ("plate_v001", "plate_v002")
    assert (a / "keep.txt").read_text() == "first"


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "f.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert os.listdir(tmp_path) == []


def test_atomic_write_never_replaces_an_existing_file(tmp_path):
    final = tmp_path / "f.bin"
    final.write_bytes(b"old")
    with pytest.raises(DirectorError, match="already exists"):
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"new")
    assert final.read_bytes() == b"old"
    with atomic_path(tmp_path / "g.bin") as tmp:
        tmp.write_bytes(b"new")
    assert (tmp_path / "g.bin").read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["f.bin", "g.bin"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_read_only_folder_is_reported_before_writing(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(DirectorError, match="not writable"):
        ensure_writable_dir(ro)


def test_folder_that_cannot_be_created_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DirectorError, match="cannot create"):
        ensure_writable_dir(blocker / "out")


def test_atomic_files_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "f.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o644
