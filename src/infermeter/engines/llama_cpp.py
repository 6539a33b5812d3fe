"""Build llama.cpp's ``llama-server`` from the source vendored in the PyPI sdist of
``llama-cpp-python`` (pinned), cached under the user's cache directory by version and flags.

    >>> binary = build_llama_server(Path("~/.cache/infermeter").expanduser())
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from infermeter.errors import EngineError
from infermeter.lifetime import die_with_parent

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
SDIST_NAME = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
SDIST_URL = (
    "https://files.pythonhosted.org/packages/ec/e9/"
    "e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/" + SDIST_NAME
)
VENDOR_PREFIX = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/vendor/llama.cpp/"

#: Portable CPU build: no -march=native (the binary may be cached and reused on another CPU),
#: no network features, no web UI download, only the server target.
CPU_FLAGS: tuple[str, ...] = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
)

Progress = Callable[[int, int, str], None]


def find_nvcc() -> str | None:
    """The CUDA compiler: ``$CUDACXX``, ``nvcc`` on PATH, or the toolkit's usual place."""
    for cand in (os.environ.get("CUDACXX"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if cand and Path(cand).exists():
            return cand
    return None


def local_cuda_arch() -> str | None:
    """The first local GPU's compute capability as CMake wants it (``9.0`` -> ``90``)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[0].replace(".", "") if out else None


def cuda_flags(arch: str, nvcc: str) -> tuple[str, ...]:
    """CUDA build for one architecture (the local GPU's): a far shorter build than all of them."""
    return (
        *CPU_FLAGS,
        "-DGGML_CUDA=ON",
        f"-DCMAKE_CUDA_ARCHITECTURES={arch}",
        f"-DCMAKE_CUDA_COMPILER={nvcc}",
    )


def choose_flags(cuda: str = "auto") -> tuple[str, ...]:
    """``cuda``: ``off`` (portable CPU build), ``on`` (CUDA, or an error saying what is
    missing), ``auto`` (CUDA when a toolkit and an NVIDIA GPU are both here)."""
    if cuda not in ("auto", "on", "off"):
        raise EngineError(f"--cuda must be auto, on or off, got {cuda!r}")
    if cuda == "off":
        return CPU_FLAGS
    nvcc, arch = find_nvcc(), local_cuda_arch()
    if nvcc is None or arch is None:
        if cuda == "on":
            missing = "nvcc (the CUDA toolkit)" if nvcc is None else "an NVIDIA GPU (nvidia-smi)"
            raise EngineError(f"--cuda on: {missing} not found on this machine")
        return CPU_FLAGS
    return cuda_flags(arch, nvcc)


def build_key(flags: tuple[str, ...]) -> str:
    digest = hashlib.sha256("\n".join(flags).encode()).hexdigest()[:10]
    return f"llama.cpp-{LLAMA_CPP_PYTHON_VERSION}-{digest}"


def cached_binary(cache_dir: Path, flags: tuple[str, ...] = CPU_FLAGS) -> Path:
    return cache_dir / build_key(flags) / "bin" / "llama-server"


def build_log_path(cache_dir: Path, flags: tuple[str, ...] = CPU_FLAGS) -> Path:
    """Where a build of these flags writes cmake's and the compiler's output."""
    return cache_dir / build_key(flags) / "build.log"


def _find_tool(module: str, attr: str, name: str) -> str | None:
    """A tool from its PyPI package (cmake, ninja) if installed, else from PATH."""
    try:
        mod = __import__(module)
        path = Path(getattr(mod, attr)) / name
        if path.exists():
            return str(path)
    except (ImportError, AttributeError):
        pass
    return shutil.which(name)


def check_compilers() -> None:
    cc = next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    cxx = next((c for c in ("c++", "g++", "clang++") if shutil.which(c)), None)
    if cc is None or cxx is None:
        missing = "C" if cc is None else "C++"
        raise EngineError(
            f"no {missing} compiler found to build llama-server; install one "
            "(Debian/Ubuntu: apt-get install build-essential) or pass --server-binary"
        )


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def fetch_sdist(cache_dir: Path, sdist: Path | None = None) -> Path:
    """The pinned sdist: a given file (checked), the cached copy, or a download (checked)."""
    target = sdist or cache_dir / "src" / SDIST_NAME
    if target.exists():
        if hashlib.sha256(target.read_bytes()).hexdigest() != SDIST_SHA256:
            if sdist is not None:
                raise EngineError(f"{sdist} is not llama-cpp-python {LLAMA_CPP_PYTHON_VERSION}")
            target.unlink()
        else:
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    try:
        with urllib.request.urlopen(SDIST_URL, timeout=120) as resp, open(tmp, "wb") as fh:
            shutil.copyfileobj(resp, fh)
    except OSError as exc:
        raise EngineError(
            f"cannot download {SDIST_NAME} ({exc}); download it by hand and pass --sdist PATH"
        ) from None
    if hashlib.sha256(tmp.read_bytes()).hexdigest() != SDIST_SHA256:
        tmp.unlink()
        raise EngineError(f"downloaded {SDIST_NAME} does not match its pinned sha256")
    tmp.replace(target)
    return target


#: Left out of a slim source pack: not needed to build llama-server (vocab test files, docs,
#: git, benchmark logs, the UI's test fixtures, and the GPU backends the build never
#: configures: it turns on CUDA alone, and CMake adds a backend's folder only when asked).
_SLIM_SKIP = (
    "models/", "docs/", ".git", "media/", "gguf-py/", "tests/", "benches/", "pocs/",
    "tools/ui/tests/", "tools/mtmd/test-", "ggml/src/ggml-opencl/", "ggml/src/ggml-sycl/",
    "ggml/src/ggml-hexagon/", "ggml/src/ggml-vulkan/", "ggml/src/ggml-metal/",
)  # fmt: skip
SLIM_MANIFEST = "INFERMETER_SOURCE.json"


def slim_keeps(rel: str) -> bool:
    """Whether a slim source pack keeps this path of the vendored llama.cpp (never one that
    climbs out of it)."""
    return not rel.startswith(_SLIM_SKIP) and ".." not in Path(rel).parts


def pack_source(cache_dir: Path, out: Path, sdist: Path | None = None) -> Path:
    """A slim tarball of the pinned sdist's vendored llama.cpp (for machines that cannot
    download and where the whole 77 MB sdist is too big to carry), with a manifest naming the
    sdist and its sha256; ``build_llama_server(source=...)`` accepts it. ``out`` ending in
    ``.xz`` is packed with xz (about half gzip's size, slower to write), else gzip."""
    import io
    import json

    full = fetch_sdist(cache_dir, sdist)
    manifest = json.dumps({"sdist": SDIST_NAME, "sha256": SDIST_SHA256}).encode()
    xz = out.suffix == ".xz"
    with (
        tarfile.open(full) as src,
        tarfile.open(out, "w:xz", preset=9) if xz else tarfile.open(out, "w:gz") as dst,
    ):
        info = tarfile.TarInfo(VENDOR_PREFIX + SLIM_MANIFEST)
        info.size = len(manifest)
        dst.addfile(info, io.BytesIO(manifest))
        for m in src.getmembers():
            if not m.name.startswith(VENDOR_PREFIX) or not (m.isfile() or m.isdir()):
                continue
            rel = m.name[len(VENDOR_PREFIX) :]
            if not slim_keeps(rel):
                continue
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)
    return out


def _check_slim(source: Path) -> None:
    import json

    try:
        with tarfile.open(source) as tar:
            fh = tar.extractfile(VENDOR_PREFIX + SLIM_MANIFEST)
            data = json.loads(fh.read()) if fh else {}
    except (OSError, KeyError, tarfile.TarError, ValueError):
        raise EngineError(f"{source} is not a source pack made by 'engine pack-source'") from None
    if data.get("sha256") != SDIST_SHA256:
        raise EngineError(f"{source} was packed from another llama-cpp-python version")


def _extract(sdist: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    with tarfile.open(sdist) as tar:
        members = []
        for m in tar.getmembers():
            if not m.name.startswith(VENDOR_PREFIX) or not (m.isfile() or m.isdir()):
                continue
            if ".." in Path(m.name).parts:
                continue
            m.name = m.name[len(VENDOR_PREFIX) :] or "."
            members.append(m)
        tar.extractall(dest, members=members)
    return dest


def build_llama_server(
    cache_dir: Path,
    *,
    flags: tuple[str, ...] = CPU_FLAGS,
    sdist: Path | None = None,
    source: Path | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> Path:
    """Return a built ``llama-server``, building it first if the cache has none.

    ``source``: a slim pack of the same pinned source (``pack_source``) instead of the sdist.
    """
    root = cache_dir / build_key(flags)
    binary = root / "bin" / "llama-server"
    if binary.exists() and not force:
        return binary
    with _lock(cache_dir / ".build.lock"):
        if binary.exists() and not force:
            return binary
        check_compilers()
        cmake = _find_tool("cmake", "CMAKE_BIN_DIR", "cmake")
        if cmake is None:
            raise EngineError("cmake not found: pip install 'infermeter[engine]'")
        ninja = _find_tool("ninja", "BIN_DIR", "ninja")
        if progress:
            progress(0, 0, "fetching source")
        if source is not None:
            _check_slim(source)
            tree = _extract(source, root / "src")
        else:
            tree = _extract(fetch_sdist(cache_dir, sdist), root / "src")
        build = root / "build"
        log_path = build_log_path(cache_dir, flags)
        generator = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"] if ninja else []
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CMAKE_", "LLAMA_"))}
        with open(log_path, "w") as log:
            if progress:
                progress(0, 0, "configuring")
            _run([cmake, "-S", str(tree), "-B", str(build), *generator, *flags], log, env, log_path)
            cmd = [
                cmake,
                "--build",
                str(build),
                "--target",
                "llama-server",
                "-j",
                str(jobs or os.cpu_count() or 2),
            ]
            _run(cmd, log, env, log_path, progress)
        built = build / "bin" / "llama-server"
        if not built.exists():
            raise EngineError(f"build finished but produced no llama-server; see {log_path}")
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, binary)
        shutil.rmtree(build, ignore_errors=True)
        shutil.rmtree(tree, ignore_errors=True)
        return binary


_STEP = re.compile(r"^\[(\d+)/(\d+)\]\s*(.*)")
_MAKE_STEP = re.compile(r"^\[\s*(\d+)%\]\s*(.*)")


def parse_build_step(line: str) -> tuple[int, int, str] | None:
    """(done, total, what) of a build output line: ninja's ``[12/206] Building CXX object
    ...``, or make's ``[ 42%] Built target ggml`` as (42, 100, ...); None for any other line."""
    line = line.strip()
    if m := _STEP.match(line):
        return int(m.group(1)), int(m.group(2)), m.group(3)
    if m := _MAKE_STEP.match(line):
        return int(m.group(1)), 100, m.group(2)
    return None


def _run(
    cmd: list[str],
    log: object,
    env: dict[str, str],
    log_path: Path,
    progress: Progress | None = None,
) -> None:
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        bufsize=1,
        preexec_fn=die_with_parent,
    )
    last = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        log.write(line)  # type: ignore[attr-defined]
        last = line.strip() or last
        if progress is None:
            continue
        if step := parse_build_step(line):
            progress(step[0], step[1], step[2])
    if proc.wait() != 0:
        raise EngineError(f"building llama-server failed ({last[:160]}); full log: {log_path}")
