"""Find OTB on this machine, compile the binding (``iota2 otb build``) and find the compiled binding.

The binding (``otb_binding.cpp``, shipped in this package) is compiled with plain ``g++`` against the ``OTB-<v>``,
``ITK-<v>`` and ``gdal`` header folders that Debian's ``libotb-dev`` installs under ``/usr/include``, and linked with
``libOTBApplicationEngine``; CMake's ``find_package(OTB)`` is not used (it fails on Debian, where it references a
binary of ``otb-qgis``). The compiled module is named after the sha256 of the source and the Python version
(``_otb_binding-<hash>.cpython-311-x86_64-linux-gnu.so``), so a binding built from another source is never loaded:
``iota2 otb status`` then says to build again.

Where the binding is looked for, in order: this package's folder (a distribution may ship it), ``$IOTA2_OTB_BUILD_DIR``,
then ``$XDG_CACHE_HOME/iota2/otb-<version>`` (``~/.cache/iota2/otb-<version>``). ``iota2 otb build`` writes into the
first of the last two, so the package folder never needs to be writable.

Environment: ``OTB_APPLICATION_PATH`` (the folder of the ``otbapp_*.so`` applications; default
``/usr/lib/<multiarch>/otb/applications``), ``IOTA2_OTB_INCLUDE_DIR`` (default ``/usr/include``), ``CXX`` (default
``g++``).
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE = PACKAGE_DIR / "otb_binding.cpp"
MODULE = "_otb_binding"
INSTALL_HINT = "apt-get install otb-bin libotb-dev"
LIBRARIES = ("OTBApplicationEngine", "OTBCommon")
ITK_LIBRARIES = ("itksys", "ITKCommon")


@dataclasses.dataclass(frozen=True)
class OtbInstall:
    """Where OTB's pieces are on this machine (any of them None when not found).

    Attributes
    ----------
    version
        ``"8.1"``: from the name of the header folder, else of the engine library.
    include_dirs
        The OTB, ITK and GDAL header folders (empty when the headers, i.e. ``libotb-dev``, are missing).
    library_dir
        The folder of ``libOTBApplicationEngine-<v>.so``.
    itk_version
        ``"4.13"``.
    applications_dir
        The folder of the ``otbapp_*.so`` applications.
    """

    version: str | None
    include_dirs: tuple[str, ...]
    library_dir: str | None
    itk_version: str | None
    applications_dir: str | None

    def missing(self) -> list[str]:
        """What prevents building or running the binding, in words (empty: nothing)."""
        problems = []
        if self.library_dir is None:
            problems.append("OTB's application engine (libOTBApplicationEngine) is not installed")
        if self.applications_dir is None:
            problems.append("OTB's applications (otbapp_*.so, package libotb-apps) are not installed")
        if not self.include_dirs:
            problems.append("OTB's headers (package libotb-dev) are not installed")
        return problems


def _version_of(name: str, prefix: str) -> str | None:
    found = re.match(rf"{prefix}-(\d+(?:\.\d+)*)", name)
    return found.group(1) if found else None


def _latest(paths: list[str], prefix: str) -> str | None:
    versions = [(tuple(int(p) for p in _version_of(Path(p).name, prefix).split(".")), p) for p in paths
                if _version_of(Path(p).name, prefix)]
    return max(versions)[1] if versions else None


def find_otb() -> OtbInstall:
    """Look for OTB's engine library, applications and headers (fast: a few globs, no subprocess)."""
    include_root = os.environ.get("IOTA2_OTB_INCLUDE_DIR", "/usr/include")
    otb_include = _latest(glob.glob(os.path.join(include_root, "OTB-*")), "OTB")
    itk_include = _latest(glob.glob(os.path.join(include_root, "ITK-*")), "ITK")
    gdal_include = os.path.join(include_root, "gdal")
    engines = sorted(glob.glob("/usr/lib/*/libOTBApplicationEngine-*.so*") +
                     glob.glob("/usr/lib/libOTBApplicationEngine-*.so*") +
                     glob.glob("/usr/local/lib/libOTBApplicationEngine-*.so*"))
    library_dir = str(Path(engines[0]).parent) if engines else None
    version = _version_of(Path(otb_include).name, "OTB") if otb_include else None
    if version is None and engines:
        found = re.search(r"libOTBApplicationEngine-(\d+\.\d+)", engines[0])
        version = found.group(1) if found else None
    itk_version = _version_of(Path(itk_include).name, "ITK") if itk_include else None
    if itk_version is None and library_dir:
        itk_libs = glob.glob(os.path.join(library_dir, "libITKCommon-*.so*"))
        found = re.search(r"libITKCommon-(\d+\.\d+)", itk_libs[0]) if itk_libs else None
        itk_version = found.group(1) if found else None
    applications = os.environ.get("OTB_APPLICATION_PATH", "").split(os.pathsep)[0] or \
        (os.path.join(library_dir, "otb", "applications") if library_dir else "")
    applications_dir = applications if applications and glob.glob(os.path.join(applications, "otbapp_*.so")) \
        else None
    headers = otb_include and itk_include and os.path.exists(os.path.join(otb_include, "otbWrapperApplication.h"))
    include_dirs = tuple(p for p in (otb_include, itk_include, gdal_include) if p and os.path.isdir(p)) \
        if headers else ()
    return OtbInstall(version, include_dirs, library_dir, itk_version, applications_dir)


def source_digest() -> str:
    """First 12 hex digits of the sha256 of ``otb_binding.cpp``."""
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]


def binding_filename() -> str:
    """``_otb_binding-<digest><EXT_SUFFIX>``: the file a build of the current source for this Python writes."""
    return f"{MODULE}-{source_digest()}{sysconfig.get_config_var('EXT_SUFFIX') or '.so'}"


def build_dir(version: str | None = None) -> Path:
    """Where ``iota2 otb build`` writes: ``$IOTA2_OTB_BUILD_DIR``, else ``~/.cache/iota2/otb-<version>``."""
    if os.environ.get("IOTA2_OTB_BUILD_DIR"):
        return Path(os.environ["IOTA2_OTB_BUILD_DIR"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "iota2" / f"otb-{version or find_otb().version or 'unknown'}"


def search_dirs() -> list[Path]:
    """The folders searched for the compiled binding, in order."""
    return [PACKAGE_DIR, build_dir()]


def find_binding() -> Path | None:
    """The compiled binding of the current source, or None."""
    name = binding_filename()
    for folder in search_dirs():
        if (folder / name).is_file():
            return folder / name
    return None


def compile_command(install: OtbInstall, target: Path) -> list[str]:
    """The g++ command line that compiles the binding into ``target``."""
    try:
        import pybind11
    except ImportError as exc:
        from iota2.plugins.otb_backend import OtbUnavailableError

        raise OtbUnavailableError("building the OTB binding needs pybind11, which is not installed; run "
                                  "pip install pybind11 (or pip install 'iota2[otb]'), then iota2 otb build") from exc
    python_include = sysconfig.get_paths()["include"]
    command = [os.environ.get("CXX", "g++"), "-O2", "-shared", "-fPIC", "-std=c++17", "-fvisibility=hidden", "-w",
               f"-I{pybind11.get_include()}", f"-I{python_include}"]
    command += [f"-I{folder}" for folder in install.include_dirs]
    command += [str(SOURCE), "-o", str(target), f"-L{install.library_dir}", f"-Wl,-rpath,{install.library_dir}"]
    command += [f"-l{name}-{install.version}" for name in LIBRARIES]
    command += [f"-l{name}-{install.itk_version}" for name in ITK_LIBRARIES]
    if glob.glob(os.path.join(install.library_dir, "libopencv_core.so")):  # seeds OTB's OpenCV classifiers
        command += ["-DIOTA2_OTB_OPENCV", "-lopencv_core"]
    return command


def build(out_dir: str | Path | None = None, quiet: bool = False) -> Path:
    """Compile the binding into ``out_dir`` (default :func:`build_dir`), atomically, and return its path.

    Prints the command line it runs (unless ``quiet``).

    Raises
    ------
    OtbUnavailableError
        OTB, its headers, pybind11 or a C++ compiler is missing, or the compilation failed (with the compiler's
        last lines).
    """
    from iota2.core.raster import atomic_output
    from iota2.plugins.otb_backend import OtbUnavailableError

    install = find_otb()
    problems = install.missing()
    if problems:
        raise OtbUnavailableError(f"cannot build the OTB binding: {'; '.join(problems)}; install them with "
                                  f"{INSTALL_HINT}, then run iota2 otb build")
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        raise OtbUnavailableError(f"cannot build the OTB binding: the C++ compiler {compiler!r} is not installed; "
                                  "install it with apt-get install g++ (or set CXX), then run iota2 otb build")
    target = Path(out_dir or build_dir(install.version)) / binding_filename()
    with atomic_output(target) as tmp:
        command = compile_command(install, tmp)
        if not quiet:
            print(shlex.join(command), flush=True)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-6:])
            raise OtbUnavailableError(f"compiling the OTB binding failed (exit {result.returncode}): {tail}")
    for stale in target.parent.glob(f"{MODULE}-*"):  # builds of older sources
        if stale != target and stale.suffix == target.suffix:
            stale.unlink(missing_ok=True)
    return target


def status() -> dict:
    """Whether OTB and the binding are usable, and where they are (what ``iota2 otb status`` prints)."""
    install = find_otb()
    binding = find_binding()
    info = {"otb_version": install.version, "otb_library_dir": install.library_dir,
            "otb_applications_dir": install.applications_dir, "otb_headers": list(install.include_dirs),
            "binding": str(binding) if binding else None, "binding_searched_in": [str(p) for p in search_dirs()],
            "python": sys.executable}
    problems = install.missing()
    if binding is None:
        problems = [p for p in problems if "headers" not in p]  # headers matter only to build
        problems.append(f"the binding is not built for this source and Python ({binding_filename()})")
    else:
        problems = [p for p in problems if "headers" not in p]
    info["problems"] = problems
    info["usable"] = not problems
    return info
