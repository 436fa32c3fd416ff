"""API keys: stored hashed, matched in constant time, scoped by path; minted once by the CLI."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar import Litestar, get, post
from litestar.datastructures import State
from litestar.testing import TestClient

from api import auth
from api.auth import (
    KEYS_STATE_KEY,
    METRICS_PUBLIC_STATE_KEY,
    ApiKey,
    KeyFile,
    KeyFileError,
    KeyRing,
    api_key_guard,
    caller_name,
    create_key,
    hash_key,
    open_keys,
    parse_keys,
    required_scope,
)
from lendguard.cli import main


def test_a_key_is_stored_as_its_sha256() -> None:
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_the_ring_finds_the_key_whose_hash_matches_and_nothing_else() -> None:
    ring = KeyRing([ApiKey("alice", frozenset({"admin"}), hash_key("k-alice")),
                    ApiKey("bob", frozenset({"score"}), hash_key("k-bob"))])
    found = ring.authenticate("k-bob")
    assert found is not None
    assert found.name == "bob"
    assert ring.authenticate("k-carol") is None
    assert ring.authenticate(hash_key("k-bob")) is None, "the stored hash is not a key"
    assert ring.authenticate("") is None


def test_every_stored_hash_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return a == b

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    ring = KeyRing([ApiKey(f"k{i}", frozenset({"score"}), hash_key(f"key-{i}")) for i in range(5)])
    assert ring.authenticate("key-0") is not None
    assert len(calls) == 5, "no early exit on a match"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"name": "a", "scopes": ["root"], "sha256": "0" * 64}, "scopes must be"),
        ({"name": "a", "scopes": [], "sha256": "0" * 64}, "scopes must be"),
        ({"name": "a", "scopes": ["score"], "sha256": "lg_plaintextkey"}, "never the key"),
        ({"name": "a b", "scopes": ["score"], "sha256": "0" * 64}, "name must be"),
        ({"scopes": ["score"], "sha256": "0" * 64}, "name must be"),
        ("just a string", "expected a mapping"),
    ],
)
def test_a_bad_entry_is_refused_with_its_reason(entry: Any, problem: str) -> None:
    with pytest.raises(KeyFileError, match=problem):
        parse_keys({"keys": [entry]})


def test_duplicate_names_are_refused() -> None:
    entry = {"name": "a", "scopes": ["score"], "sha256": "0" * 64}
    with pytest.raises(KeyFileError, match="duplicate"):
        parse_keys([entry, {**entry, "sha256": "1" * 64}])


@pytest.mark.parametrize(
    ("path", "scope"),
    [("/v1/score", "score"), ("/v1/score/batch", "score"), ("/v1/admin/reload", "admin"),
     ("/v1/admin/failover", "admin"), ("/v1/admin", "admin"), ("/healthz", None), ("/readyz", None),
     ("/metrics", "read"), ("/dashboard", "read"), ("/dashboard/", "read"), ("/dashboards", None),
     ("/schema", None), ("/schema/openapi.json", None)],
)
def test_what_each_path_needs(path: str, scope: str | None) -> None:
    assert required_scope(path) == scope


def test_open_metrics_opens_metrics_alone() -> None:
    assert required_scope("/metrics", metrics_public=True) is None
    assert required_scope("/dashboard", metrics_public=True) == "read"
    assert required_scope("/v1/score", metrics_public=True) == "score"


def test_admin_implies_read_and_nothing_else_implies_anything() -> None:
    admin, reader, scorer = (ApiKey(n, frozenset({n}), "0" * 64) for n in ("admin", "read", "score"))
    assert admin.allows("read")
    assert admin.allows("admin")
    assert not admin.allows("score")
    assert reader.allows("read")
    assert not reader.allows("admin")
    assert not scorer.allows("read")


def test_minting_stores_only_the_hash_in_a_private_file(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.yml"
    key = create_key(keys_file, "alice", ["score", "admin", "score"])
    assert key.startswith("lg_")
    assert len(key) > 40
    text = keys_file.read_text()
    assert key not in text
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    entries = yaml.safe_load(text)["keys"]
    assert entries[0]["sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert entries[0]["scopes"] == ["score", "admin"]
    second = create_key(keys_file, "bob", ["score"])
    ring = KeyFile(keys_file).ring
    assert [k.name for k in ring.keys] == ["alice", "bob"]
    assert ring.authenticate(second) == ApiKey("bob", frozenset({"score"}), hash_key(second))
    with pytest.raises(KeyFileError, match="already exists"):
        create_key(keys_file, "bob", ["admin"])


def test_a_json_keys_file_works_too(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    key = create_key(keys_file, "svc", ["score"])
    assert json.loads(keys_file.read_text())["keys"][0]["name"] == "svc"
    assert KeyFile(keys_file).ring.authenticate(key) is not None


def test_the_keys_file_is_reread_when_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "RELOAD_CHECK_SECONDS", 0.0)
    keys_file = tmp_path / "keys.yml"
    first = create_key(keys_file, "alice", ["score"])
    keys = KeyFile(keys_file)
    second = create_key(keys_file, "bob", ["score"])
    assert keys.current().authenticate(second) is not None, "a new key works without a restart"
    keys_file.write_text("keys: [not: valid")
    assert keys.current().authenticate(first) is not None, "a broken file keeps the last good keys"


def test_without_a_keys_file_auth_is_off_unless_required(tmp_path: Path) -> None:
    assert open_keys(None, require=False) is None
    with pytest.raises(KeyFileError, match="LENDGUARD_REQUIRE_AUTH"):
        open_keys(None, require=True)
    with pytest.raises(KeyFileError, match="cannot read"):
        open_keys(tmp_path / "missing.yml", require=False)


def test_the_cli_prints_the_key_once_and_stores_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys_file = tmp_path / "keys.yml"
    assert main(["api-key", "create", "ops", "--scope", "admin", "--file", str(keys_file)]) == 0
    key = capsys.readouterr().out.strip()
    assert KeyFile(keys_file).ring.authenticate(key) == ApiKey("ops", frozenset({"admin"}), hash_key(key))
    assert main(["api-key", "create", "ops", "--scope", "admin", "--file", str(keys_file)]) == 1
    assert main(["api-key", "create", "grafana", "--scope", "read", "--file", str(keys_file)]) == 0
    reader = capsys.readouterr().out.strip()
    assert KeyFile(keys_file).ring.authenticate(reader) == ApiKey("grafana", frozenset({"read"}), hash_key(reader))


# ----- the guard on a small app -------------------------------------------------------------------
@post("/v1/score", sync_to_thread=False)
def _score() -> dict[str, str]:
    return {"ok": "score"}


@post("/v1/admin/reload", sync_to_thread=False)
def _admin(request: Any) -> dict[str, str]:
    return {"caller": caller_name(request)}


@get("/healthz", sync_to_thread=False)
def _health() -> dict[str, str]:
    return {"status": "ok"}


@get("/metrics", sync_to_thread=False)
def _metrics() -> str:
    return "lendguard_up 1"


def _app(keys: KeyFile | None, *, metrics_public: bool = False) -> Litestar:
    return Litestar([_score, _admin, _health, _metrics], guards=[api_key_guard],
                    state=State({KEYS_STATE_KEY: keys, METRICS_PUBLIC_STATE_KEY: metrics_public}))


@pytest.fixture
def keys_of_every_scope(tmp_path: Path) -> tuple[KeyFile, dict[str, str]]:
    keys_file = tmp_path / "keys.yml"
    keys = {scope: create_key(keys_file, f"holder-{scope}", [scope]) for scope in ("score", "read", "admin")}
    return KeyFile(keys_file), keys


def test_metrics_needs_the_read_scope_unless_opened(keys_of_every_scope: tuple[KeyFile, dict[str, str]]) -> None:
    keys, key = keys_of_every_scope
    with TestClient(_app(keys)) as client:
        assert client.get("/metrics").status_code == 401
        refused = client.get("/metrics", headers={"X-API-Key": key["score"]})
        assert refused.status_code == 403
        assert "lacks the 'read' scope" in refused.json()["detail"]
        assert client.get("/metrics", headers={"X-API-Key": key["read"]}).status_code == 200
        assert client.get("/metrics", headers={"Authorization": f"Bearer {key['admin']}"}).status_code == 200
    with TestClient(_app(keys, metrics_public=True)) as client:
        assert client.get("/metrics").status_code == 200, "LENDGUARD_METRICS_PUBLIC: open for a scraper"
        assert client.post("/v1/score").status_code == 401, "and nothing else"


@pytest.fixture
def keyed(tmp_path: Path) -> tuple[TestClient[Litestar], str, str]:
    keys_file = tmp_path / "keys.yml"
    admin, scorer = create_key(keys_file, "alice", ["admin"]), create_key(keys_file, "bob", ["score"])
    return TestClient(_app(KeyFile(keys_file))), admin, scorer


def test_the_guard_answers_401_403_or_lets_through(keyed: tuple[TestClient[Litestar], str, str]) -> None:
    client, admin, scorer = keyed
    with client:
        missing = client.post("/v1/score")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert "missing API key" in missing.json()["detail"]
        unknown = client.post("/v1/score", headers={"X-API-Key": "lg_guess"})
        assert (unknown.status_code, unknown.json()["detail"]) == (401, "unknown API key")
        wrong = client.post("/v1/score", headers={"Authorization": f"Bearer {admin}"})
        assert wrong.status_code == 403
        assert wrong.json()["detail"] == "API key 'alice' lacks the 'score' scope this route needs"
        assert client.post("/v1/score", headers={"Authorization": f"Bearer {scorer}"}).status_code == 201
        assert client.post("/v1/score", headers={"X-API-Key": scorer}).status_code == 201
        assert client.post("/v1/admin/reload", headers={"X-API-Key": scorer}).status_code == 403
        assert client.post("/v1/admin/reload", headers={"X-API-Key": admin}).json() == {"caller": "alice"}
        assert client.get("/healthz").status_code == 200, "health stays open"


def test_without_keys_scoring_is_open_and_admin_is_closed() -> None:
    with TestClient(_app(None)) as client:
        assert client.post("/v1/score").status_code == 201
        assert client.get("/metrics").status_code == 200, "open mode: the operator pages are open too"
        refused = client.post("/v1/admin/reload")
        assert refused.status_code == 403
        assert "no API keys configured" in refused.json()["detail"]
