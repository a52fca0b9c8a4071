"""Where a learner's kernel runs in a class run: a sandbox made with an existing tool.

``bwrap`` (bubblewrap, ``apt-get install bubblewrap``) on Linux; Docker or Podman when the teacher asks
for them (macOS, Windows, or a Linux machine without user namespaces); or, where none of these works,
no sandbox at all, which the grade table then says in one line.

What a kernel gets, with bubblewrap:

* its own PID namespace (it cannot see or signal the grader, the other kernels or anything else; when
  the kernel exits, everything it started is killed), no network, its own IPC and hostname;
* the machine's files read-only, minus what it must not read: ``$HOME``, the course repository (all but
  the package and the environment), the solutions, every class folder, ``/run`` (sockets such as
  Docker's), and a fresh ``/tmp``, ``/var/tmp`` and ``/dev/shm``;
* a private scratch directory ``/tmp/work`` as its working directory, on a size-capped tmpfs;
* when the grader runs as root, the kernel runs as ``nobody`` (it cannot read root's files);
* limits (set by :mod:`llmlab.course.limited` before bubblewrap starts): address space and CPU seconds
  per process, a process count, and, where cgroups are writable, one memory limit for the kernel and
  its children that counts what they write to the tmpfs, and one process limit.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

NOBODY = 65534
SCRATCH = "/tmp/work"
KINDS = ("auto", "bwrap", "docker", "podman", "none")


@dataclass(frozen=True)
class Limits:
    """The limits of one kernel (and of every process it starts)."""

    memory_bytes: int             # address space of each process; the cgroup's memory, tmpfs included
    cpu_seconds: int              # CPU time of each process
    processes: int = 256          # processes (and threads) the kernel may run
    tmpfs_bytes: int | None = None  # size of each writable tmpfs (/tmp, /dev/shm); default memory / 4, at most 1 GiB
    threads: int | None = None    # OMP_NUM_THREADS for the kernel (None: leave it to torch)

    def __post_init__(self):
        for name in ("memory_bytes", "cpu_seconds", "processes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        for name in ("tmpfs_bytes", "threads"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")

    @property
    def tmpfs(self) -> int:
        return self.tmpfs_bytes or min(2**30, self.memory_bytes // 4)


@dataclass
class Sandbox:
    """How kernels are started: ``kind`` is one of bwrap, docker, podman, none; ``note`` says why a
    requested sandbox was replaced by none (empty when kernels are isolated)."""

    kind: str
    hidden: list[str] = field(default_factory=list)
    image: str = "llmlab-grader"
    note: str = ""

    @property
    def isolated(self) -> bool:
        return self.kind != "none"


# -------------------------------------------------------------------------------------------- choosing


def _bwrap_works() -> str:
    """'' when bubblewrap can make a sandbox here, else the reason it cannot."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    userns = [] if os.geteuid() == 0 else ["--unshare-user"]
    try:
        proc = subprocess.run([exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", *userns,
                               "--unshare-pid", "--unshare-net", "--die-with-parent", "true"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bubblewrap failed to start: {e}"
    if proc.returncode != 0:
        return f"bubblewrap cannot create namespaces here: {proc.stderr.strip()[:200]}"
    return ""


def choose(kind: str = "auto", hidden: list[str | Path] = (), image: str = "llmlab-grader") -> Sandbox:
    """The sandbox to use. ``auto``: bubblewrap where it works, else none (with the reason in ``note``).
    An explicitly requested sandbox that cannot work raises ``RuntimeError``."""
    if kind not in KINDS:
        raise ValueError(f"sandbox must be one of {', '.join(KINDS)}, got {kind!r}")
    hide = [str(Path(h).resolve()) for h in hidden]
    if kind in ("auto", "bwrap"):
        if not sys.platform.startswith("linux"):
            why = f"bubblewrap needs Linux (this is {sys.platform}): use --sandbox docker or podman"
        else:
            why = _bwrap_works()
        if not why:
            return Sandbox("bwrap", hide)
        if kind == "bwrap":
            raise RuntimeError(why)
        return Sandbox("none", hide, note=why)
    if kind in ("docker", "podman"):
        if shutil.which(kind) is None:
            raise RuntimeError(f"{kind} is not installed")
        return Sandbox(kind, hide, image=image)
    return Sandbox("none", hide, note="--sandbox none was asked for")


# ------------------------------------------------------------------------------------------ bubblewrap


def _visible_roots() -> list[Path]:
    """What the kernel needs to read: the interpreter, the environment, the llmlab package."""
    import llmlab

    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(sys.executable).parent,
             Path(llmlab.__file__).resolve().parent}
    here = Path.cwd()  # `python -m` puts it on sys.path; it is where the grader keeps its own files
    paths |= {Path(p) for p in sys.path if p and Path(p).is_dir() and Path(p).resolve() != here.resolve()}
    return sorted({q for p in paths for q in (p.absolute(), p.resolve())})


def _minimal(paths: list[Path]) -> list[Path]:
    """``paths`` without those inside another one of them (a folder covers what is in it)."""
    return sorted(p for p in set(paths) if not any(q != p and _under(p, q) for q in paths))


def _hidden_roots(extra: list[str]) -> list[Path]:
    """What the kernel must not read: home, the course repository, the class folders, runtime sockets."""
    from llmlab.course.notebooks import solutions_dir

    import llmlab

    package = Path(llmlab.__file__).resolve().parent
    roots = [Path.home(), solutions_dir(), *map(Path, extra)]
    repo = package.parent
    if (repo / "solutions").is_dir() or (repo / ".git").exists() or (repo / "tests").is_dir():
        roots.append(repo)  # a source checkout: its tests hold reference answers, its history the solutions
    for p in ("/run", "/var/run", "/var/tmp", "/mnt", "/media", "/srv"):
        if Path(p).is_dir() and not Path(p).is_symlink():
            roots.append(Path(p))
    out = []
    for r in roots:
        r = r.resolve()
        if r.is_dir() and r != Path("/") and r not in out:
            out.append(r)
    return out


def _under(p: Path, root: Path) -> bool:
    return p == root or root in p.parents


def bwrap_command(sandbox: Sandbox, limits: Limits, env: dict[str, str], argv: list[str],
                  overlays: list[tuple[str, str]] = ()) -> list[str]:
    """The bubblewrap command line that runs ``argv`` in a sandbox; each ``(file, path)`` of ``overlays``
    is seen at ``path`` instead of what lies there (the interview bank with its graded answers withheld)."""
    cmd = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    size = str(limits.tmpfs)
    # Each folder to hide becomes an empty tmpfs; /tmp and /dev/shm become private, writable and capped.
    # One inside another is hidden with it.
    roots = {r: ["--perms", "0755", "--tmpfs"] for r in _hidden_roots(sandbox.hidden)}
    roots.update({Path(p): ["--perms", "1777", "--size", size, "--tmpfs"] for p in ("/tmp", "/dev/shm")})
    # What the kernel needs, minus any folder that holds a hidden one (the repository itself may be on
    # sys.path): what it needs below a hidden folder is bound back one piece at a time (the course may
    # well be checked out in /tmp).
    visible = _minimal([v for v in _visible_roots() if v.exists() and not any(_under(r, v) for r in roots)])
    for root in sorted(r for r in roots if not any(h != r and _under(r, h) for h in roots)):
        cmd += [*roots[root], str(root)]
        made = {root}
        for v in (v for v in visible if _under(v, root)):
            for parent in reversed(v.parents):  # bubblewrap would make missing folders readable by root only
                if _under(parent, root) and parent not in made:
                    cmd += ["--perms", "0755", "--dir", str(parent)]
                    made.add(parent)
            cmd += ["--ro-bind", str(v), str(v)]
    cmd += ["--perms", "1777", "--dir", SCRATCH]
    for src, dest in overlays:
        cmd += ["--ro-bind", src, dest]
    if has_gpu():
        for dev in sorted(Path("/dev").glob("nvidia*")):
            cmd += ["--dev-bind", str(dev), str(dev)]
    cmd += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--chdir", SCRATCH, "--clearenv"]
    if os.geteuid() != 0:
        cmd += ["--unshare-user", "--disable-userns"]
    for k, v in env.items():
        cmd += ["--setenv", k, v]
    return cmd + argv


def container_command(sandbox: Sandbox, limits: Limits, env: dict[str, str], argv: list[str]) -> list[str]:
    """The ``docker run`` / ``podman run`` command line that runs ``argv`` in a container of ``sandbox.image``:
    an image built from ``docker/Dockerfile``, which holds the course's package and environment, with the
    graded interview answers withheld and no solutions or tests."""
    size = limits.tmpfs
    cmd = [sandbox.kind, "run", "--rm", "-i", "--network", "none", "--read-only",
           "--tmpfs", f"/tmp:rw,exec,size={size},mode=1777", "--tmpfs", f"/dev/shm:rw,size={size},mode=1777",
           "--memory", str(limits.memory_bytes), "--memory-swap", str(limits.memory_bytes),
           "--pids-limit", str(limits.processes), "--ulimit", f"cpu={limits.cpu_seconds}",
           "--ulimit", f"nproc={limits.processes}", "--ulimit", "nofile=4096:4096",
           "--user", f"{NOBODY}:{NOBODY}", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
           "--workdir", "/tmp"]
    if limits.threads:
        cmd += ["--cpus", str(limits.threads)]
    for k, v in env.items():
        cmd += ["-e", f"{k}={v}"]
    return cmd + [sandbox.image, *argv]


def kernel_env(limits: Limits, inside: bool) -> dict[str, str]:
    """The kernel's environment: nothing of the grader's but what a notebook needs."""
    home = "/tmp/home" if inside else None
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "MPLBACKEND": "agg", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if home:
        env.update(HOME=home, TMPDIR="/tmp", MPLCONFIGDIR="/tmp/home/.matplotlib", XDG_CACHE_HOME="/tmp/home/.cache")
    for k in ("LLMLAB_DEVICE", "CUDA_VISIBLE_DEVICES", "LLMLAB_REQUIRE_FORTUNES"):
        if k in os.environ:
            env[k] = os.environ[k]
    if limits.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(limits.threads)
    return env


def has_gpu() -> bool:
    """Whether this machine has an NVIDIA GPU (its device files are passed into the sandbox)."""
    return Path("/dev/nvidiactl").exists()


# ---------------------------------------------------------------------------------------------- cgroups


def _cgroup_dirs() -> list[Path]:
    """The cgroup folders (memory and pids controllers) this process may create groups in; [] where none."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    base = Path("/sys/fs/cgroup")
    found = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "" and (base / "cgroup.controllers").is_file():  # cgroup v2
            here = base / path.lstrip("/")
            have = (here / "cgroup.subtree_control").read_text().split() if (here / "cgroup.subtree_control").is_file() else []
            if "memory" in have and "pids" in have and os.access(here, os.W_OK):
                found.append(here)
        for name in ("memory", "pids"):
            if name in controllers.split(","):
                here = base / name / path.lstrip("/")
                if here.is_dir() and os.access(here, os.W_OK):
                    found.append(here)
    return found


class CGroup:
    """One kernel's cgroups (memory and pids), where the machine lets us make them: every process the
    kernel starts stays in them, the tmpfs it fills counts against its memory, and :meth:`kill` ends all."""

    def __init__(self, limits: Limits, enabled: bool = True):
        self.dirs: list[Path] = []
        for parent in _cgroup_dirs() if enabled else []:
            d = parent / f"llmlab-{uuid.uuid4().hex[:12]}"
            try:
                d.mkdir()
                if (d / "memory.max").exists():                      # v2
                    (d / "memory.max").write_text(str(limits.memory_bytes))
                    (d / "memory.swap.max").write_text("0") if (d / "memory.swap.max").exists() else None
                    (d / "pids.max").write_text(str(limits.processes))
                elif (d / "memory.limit_in_bytes").exists():         # v1 memory
                    (d / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
                elif (d / "pids.max").exists():                      # v1 pids
                    (d / "pids.max").write_text(str(limits.processes))
                self.dirs.append(d)
            except OSError:
                _rmdir(d)

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def pids(self) -> set[int]:
        out = set()
        for d in self.dirs:
            try:
                out |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return out

    def peak_bytes(self) -> int | None:
        for d in self.dirs:
            for name in ("memory.peak", "memory.max_usage_in_bytes"):
                try:
                    return int((d / name).read_text())
                except (OSError, ValueError):
                    continue
        return None

    def kill(self) -> None:
        """Kill every process left in the groups, then remove them."""
        import signal
        import time

        for d in self.dirs:
            if (d / "cgroup.kill").exists():
                try:
                    (d / "cgroup.kill").write_text("1")
                except OSError:
                    pass
        deadline = time.monotonic() + 10
        while self.pids() and time.monotonic() < deadline:
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.05)
        for d in self.dirs:
            _rmdir(d)


def _rmdir(d: Path) -> None:
    import time

    for _ in range(50):
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)
