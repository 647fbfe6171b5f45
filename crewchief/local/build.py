"""Find or build llama.cpp's ``llama-server`` and cache it under ``<home>/llama.cpp``.

Order: an explicit binary (``CREWCHIEF_LLAMA_SERVER`` or settings), then the
cached build, then a build from the llama.cpp sources vendored in the pinned
``llama-cpp-python`` source package (fetched with pip, checked by SHA-256).
The build targets the instruction sets this CPU reports (AVX2, AVX-512, ...),
so the cache key includes the CPU's features: a home copied to another machine
rebuilds instead of crashing. AMX stays off: virtual machines often report it
without enabling it, and llama.cpp then crashes on its first matrix multiply.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from crewchief.errors import LocalModelError, ModelHashMismatch
from crewchief.local._files import Progress, ProgressFn, file_lock, sha256_file

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
_SOURCE_PREFIX = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/vendor/llama.cpp/"
_CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",
    "-DGGML_AMX_TILE=OFF",
    "-DGGML_AMX_INT8=OFF",
    "-DGGML_AMX_BF16=OFF",
    # Fails to compile with GCC 12 in this llama.cpp version; plain AVX-512 is used instead.
    "-DGGML_AVX512_BF16=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
]
_PERCENT = re.compile(r"^\[\s*(\d+)%\]")
# ggml option -> the /proc/cpuinfo flag that must be present to turn it on.
_ISA_FLAGS = {
    "GGML_SSE42": "sse4_2",
    "GGML_AVX": "avx",
    "GGML_AVX2": "avx2",
    "GGML_BMI2": "bmi2",
    "GGML_FMA": "fma",
    "GGML_F16C": "f16c",
    "GGML_AVX_VNNI": "avx_vnni",
    "GGML_AVX512": "avx512f",
    "GGML_AVX512_VBMI": "avx512vbmi",
    "GGML_AVX512_VNNI": "avx512_vnni",
}


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def _cpu_key() -> str:
    raw = f"{platform.machine()}|{' '.join(sorted(_cpu_flags()))}".encode()
    return hashlib.sha256(raw).hexdigest()[:12]


def _isa_options() -> list[str]:
    """Instruction-set options for x86-64 from the CPU's flags (elsewhere: ggml's defaults)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return []
    flags = _cpu_flags()
    return [f"-D{opt}={'ON' if flag in flags else 'OFF'}" for opt, flag in _ISA_FLAGS.items()]


def cached_server_path(home: Path) -> Path:
    """Where this machine's build of llama-server lives (it may not exist yet)."""
    return Path(home) / "llama.cpp" / f"{LLAMA_CPP_PYTHON_VERSION}-{_cpu_key()}" / "llama-server"


def _runs(binary: Path) -> bool:
    try:
        proc = subprocess.run(
            [str(binary), "--version"], capture_output=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def find_llama_server(home: Path, explicit: str | None = None) -> Path | None:
    """An explicit binary, or the cached build; ``None`` when neither exists.

    Raises:
        LocalModelError: the explicit binary is missing or does not run.
    """
    explicit = explicit or os.environ.get("CREWCHIEF_LLAMA_SERVER")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file() or not _runs(path):
            raise LocalModelError(
                f"CREWCHIEF_LLAMA_SERVER={explicit} is not a llama-server binary that runs"
            )
        return path
    cached = cached_server_path(home)
    return cached if cached.is_file() and _runs(cached) else None


def ensure_llama_server(
    home: Path,
    *,
    explicit: str | None = None,
    on_progress: ProgressFn | None = None,
    pip_args: Sequence[str] = (),
) -> Path:
    """The llama-server binary, building and caching it on first use (several minutes).

    Raises:
        LocalModelError: missing build tools, a failed download or build (with
            the log's last lines and where the full log is).
    """
    found = find_llama_server(home, explicit)
    if found is not None:
        return found
    target = cached_server_path(home)
    report = on_progress or (lambda _p: None)
    with file_lock(target.parent.parent / ".build.lock"):
        if target.is_file() and _runs(target):
            return target  # another process built it while we waited
        _check_tools()
        target.parent.mkdir(parents=True, exist_ok=True)
        log_path = target.parent / "build.log"
        with tempfile.TemporaryDirectory(prefix="build-", dir=target.parent) as tmp:
            work = Path(tmp)
            report(Progress("build", "downloading llama.cpp sources"))
            source = _extract_sources(_download_sdist(work, pip_args), work / "src")
            _cmake(source, work / "build", log_path, report)
            built = work / "build" / "bin" / "llama-server"
            if not built.is_file():
                raise LocalModelError(f"the build finished without {built}; see {log_path}")
            staged = target.with_name("llama-server.new")
            shutil.copy2(built, staged)
            os.replace(staged, target)
        if not _runs(target):
            raise LocalModelError(f"the freshly built {target} does not run; see {log_path}")
        report(Progress("done", f"llama-server ready: {target}", 100, 100))
        return target


def _check_tools() -> None:
    missing = [tool for tool in ("cmake", "make") if shutil.which(tool) is None]
    if shutil.which("c++") is None and shutil.which("g++") is None:
        missing.append("a C++ compiler (g++)")
    if missing:
        raise LocalModelError(
            "building llama-server needs " + ", ".join(missing) + " (on Debian/Ubuntu: "
            "apt install cmake g++ make); or set CREWCHIEF_LLAMA_SERVER to an existing "
            "llama-server binary"
        )


def _download_sdist(work: Path, pip_args: Sequence[str]) -> Path:
    requirements = work / "requirements.txt"
    requirements.write_text(
        f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION} --hash=sha256:{SDIST_SHA256}\n"
    )
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        "--require-hashes", "--disable-pip-version-check", "--progress-bar", "off", "--quiet",
        "--dest", str(work), "-r", str(requirements), *pip_args,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    sdists = list(work.glob("llama_cpp_python-*.tar.gz"))
    if proc.returncode != 0 or not sdists:
        lines = [
            ln
            for ln in (proc.stderr + proc.stdout).splitlines()
            if ln.strip() and not ln.startswith("WARNING: Location")
        ]
        raise LocalModelError(
            f"pip could not download llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}:\n"
            + "\n".join(lines[-8:])
        )
    if sha256_file(sdists[0]) != SDIST_SHA256:
        raise ModelHashMismatch(f"{sdists[0].name} does not match its pinned SHA-256")
    return sdists[0]


def _extract_sources(sdist: Path, dest: Path) -> Path:
    with tarfile.open(sdist, "r:gz") as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(_SOURCE_PREFIX)]
        if not members:
            raise LocalModelError(f"{sdist.name} has no vendored llama.cpp sources")
        archive.extractall(dest, members=members, filter="data")
    return dest / _SOURCE_PREFIX


def _cmake(source: Path, build: Path, log_path: Path, report: ProgressFn) -> None:
    jobs = str(os.cpu_count() or 2)
    steps = [
        (
            "configuring llama.cpp",
            ["cmake", "-S", str(source), "-B", str(build), *_CMAKE_FLAGS, *_isa_options()],
        ),
        (
            "building llama-server",
            ["cmake", "--build", str(build), "--target", "llama-server", "-j", jobs],
        ),
    ]
    with log_path.open("w") as log:
        for label, cmd in steps:
            report(
                Progress("build", label, 0, 100)
                if "building" in label
                else Progress("build", label)
            )
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                match = _PERCENT.match(line)
                if match:
                    report(Progress("build", label, int(match.group(1)), 100))
            if proc.wait() != 0:
                log.flush()
                tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
                raise LocalModelError(f"{label} failed (full log: {log_path}):\n{tail}")
