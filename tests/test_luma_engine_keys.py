"""Where the Luma key comes from, and that it does not print itself."""

from __future__ import annotations

import copy
import pickle

import pytest

from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.engines.luma.keys import KeySource, SecretKey, base_url_from_env, redact

KEY = "luma-api-SECRET-0123456789abcdef"


def test_environment_key_wins_over_the_key_file(tmp_path, monkeypatch):
    (tmp_path / "director").mkdir()
    (tmp_path / "director" / "luma_api_key").write_text("\n  luma-api-from-file  \n")
    monkeypatch.setenv("LUMA_AGENTS_API_KEY", KEY)
    k = KeySource(tmp_path).resolve()
    assert k.reveal() == KEY and "environment" in k.source
    monkeypatch.delenv("LUMA_AGENTS_API_KEY")
    k = KeySource(tmp_path).resolve()
    assert k.reveal() == "luma-api-from-file" and "luma_api_key" in k.source


def test_missing_key_names_both_places(tmp_path, monkeypatch):
    monkeypatch.delenv("LUMA_AGENTS_API_KEY", raising=False)
    with pytest.raises(DirectorError, match=r"LUMA_AGENTS_API_KEY.*director/luma_api_key") as e:
        KeySource(tmp_path).resolve()
    assert e.value.field == "api_key"


def test_secret_key_never_shows_its_value():
    k = SecretKey(KEY, "test")
    for text in (repr(k), str(k), f"{k}", repr([k]), repr(copy.deepcopy(k))):
        assert KEY not in text
    with pytest.raises(TypeError):
        pickle.dumps(k)
    assert KEY not in k.account and len(k.account) == 16
    assert SecretKey(KEY, "other").account == k.account


def test_redact_removes_the_key_and_bearer_tokens():
    text = f"failed: {KEY} sent as {{'Authorization': 'Bearer {KEY}'}} and Bearer other-token"
    out = redact(text, SecretKey(KEY, "t"))
    assert KEY not in out and "other-token" not in out and out.count("[redacted]") == 3


def test_base_url_comes_from_the_environment_for_proxies(monkeypatch):
    monkeypatch.setenv("LUMA_BASE_URL", "http://127.0.0.1:9/v1/")
    assert base_url_from_env() == "http://127.0.0.1:9/v1"
    assert base_url_from_env("https://proxy.example/v1") == "https://proxy.example/v1"
    monkeypatch.delenv("LUMA_BASE_URL")
    assert base_url_from_env() == "https://agents.lumalabs.ai/v1"
    with pytest.raises(DirectorError):
        base_url_from_env("ftp://x")
