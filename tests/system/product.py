"""What the system tests know about hailo-ollama-service and its stand-in upstream.

Paths and names come from notes/contract.md; nothing here depends on pytest,
so `make demo` and bench/system_bench.py can reuse it.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import harness

REPO = Path(__file__).resolve().parents[2]
# Hailo's real server 5.1.1 built for x86-64 (../shared/peer/README.md)
PEER_TARBALL = Path(os.environ.get("HOS_PEER_TARBALL")
                    or REPO.parent / "shared/peer/hailo-ollama-5.1.1-x86_64.tar.xz")

PACKAGE = "hailo-ollama-service"
UPSTREAM = "hailo-gen-ai-model-zoo"
UNIT = "hailo-ollama.service"
PATH_UNIT = "hailo-ollama-config.path"
CONFIG_UNIT = "hailo-ollama-config.service"
RECHECK_UNIT = "hailo-ollama-config-recheck.service"
CONFFILE = "/etc/hailo/hailo-ollama.yaml"
LAYER_DIR = "/etc/hailo/hailo-ollama.d"
DEBCONF_LAYER = f"{LAYER_DIR}/00-debconf.yaml"
JSON = "/etc/xdg/hailo-ollama/hailo-ollama.json"
JSON_DISTRIB = JSON + ".distrib"
ENV_FILE = "/run/hailo-ollama/hailo-ollama.env"
DROPIN = "/etc/systemd/system/hailo-ollama.service.d/50-hailo-ollama-service.conf"
STATE = "/var/lib/hailo-ollama"  # the service user's tree
BLOB = f"{STATE}/models/blob"
MANIFESTS = f"{STATE}/models/manifests"
MIRROR_RECORD = f"{STATE}/mirror-state.json"  # the manifest mirror's own record (service user)
LEGACY_STATE = f"{STATE}/render-state.json"  # 1.0.0's bookkeeping, no longer trusted
BOOK_DIR = "/var/lib/hailo-ollama-service"  # root's own bookkeeping
BOOK = f"{BOOK_DIR}/state.json"
UPSTREAM_MANIFESTS = "/usr/share/hailo-ollama/models/manifests"
USER = "hailo-ollama"
STANDIN_CONTROL = "/etc/hailo-standin"
DEBS_IN = "/srv/debs"  # readable by _apt: no "unsandboxed" notice
PORT = 11434
SEED = {"server": {"host": "0.0.0.0", "port": 11434},
        "library": {"host": "dev-public.hailo.ai", "port": 443},
        "main_poll_time_ms": 200}
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ProductError(AssertionError):
    pass


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def deb_file(deb: Path, path: str) -> bytes:
    """One file's content from a .deb (read on the host)."""
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    out = subprocess.run(["tar", "-xO", "." + path], input=tar, capture_output=True)
    if out.returncode != 0:
        raise ProductError(f"{path} not in {deb.name}: {out.stderr.decode()}")
    return out.stdout


def deb_field(deb: Path, field: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True,
                          check=True).stdout.strip()


# ------------------------------------------------------------- releases
def _git(*args, check: bool = True) -> subprocess.CompletedProcess:
    """`git -C REPO ARGS` (read-only use: nothing here changes git state)."""
    try:
        cp = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, timeout=120)
    except FileNotFoundError:
        raise ProductError("git is not installed: cannot find the commit of an earlier release") from None
    if check and cp.returncode != 0:
        raise ProductError(f"git {' '.join(args)} failed ({cp.returncode}): "
                           f"{cp.stderr.decode(errors='replace').strip()}")
    return cp


def release_commit(version: str, tag: str | None = None) -> str:
    """The commit that carries release VERSION.

    The tag (default ``v``VERSION) when the repository has it. Else (a clone
    without tags) the last commit whose debian/changelog still starts with
    ``(VERSION)``: walking the commits that changed debian/changelog, newest
    first, the newest one that names VERSION; the release is then the commit
    just before the next change of debian/changelog (the version bump), or
    HEAD when there was none. Raises ProductError when there is neither: an
    upgrade test must never fall back to the current work tree.
    """
    tag = tag or f"v{version}"
    if _git("rev-parse", "--is-inside-work-tree", check=False).returncode != 0:
        raise ProductError(f"{REPO} is not a git work tree: cannot find the commit of release {version} "
                           "(set HOS_DEB_PREVIOUS to a .deb of it)")
    cp = _git("rev-parse", "--verify", "--quiet", f"{tag}^{{commit}}", check=False)
    if cp.returncode == 0 and cp.stdout.strip():
        return cp.stdout.decode().strip()
    newer = None  # the next newer commit that changed debian/changelog
    for commit in _git("log", "--first-parent", "--format=%H", "--", "debian/changelog").stdout.decode().split():
        shown = _git("show", f"{commit}:debian/changelog", check=False)
        first = shown.stdout.decode(errors="replace").splitlines()[:1] if shown.returncode == 0 else []
        if first and f"({version})" in first[0]:
            if newer is None:
                return _git("rev-parse", "HEAD").stdout.decode().strip()
            return _git("rev-parse", f"{newer}^").stdout.decode().strip()
        newer = commit
    raise ProductError(f"no tag {tag} and no commit whose debian/changelog starts with ({version}) "
                       f"in {REPO}: cannot build release {version} as released "
                       "(fetch the tags, or set HOS_DEB_PREVIOUS to a .deb of it)")


def export_commit(commit: str, dest: Path) -> None:
    """`git archive COMMIT | tar -x -C DEST`: the tree of COMMIT, without .git."""
    archive = _git("archive", "--format=tar", commit).stdout
    cp = subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, capture_output=True, timeout=120)
    if cp.returncode != 0:
        raise ProductError(f"cannot unpack git archive {commit}: {cp.stderr.decode(errors='replace')}")


# ------------------------------------------------------------------- debs
class Debs:
    """The .deb files under test: from $HOS_DEB, $HOS_DEB_PREVIOUS and
    $HOS_STANDIN_DIR when set, else built on first use into WORKDIR.

    The previous versions are releases *as released*: the package built
    from the commit that carries it (tag ``v1.0.0``), never the current tree
    with another version number. ``hos_previous`` is 1.0.0, the first
    release (whose bookkeeping lay in the service user's tree);
    ``hos_last_release`` is the release before this version."""

    PREVIOUS_VERSION = "1.0.0"
    PREVIOUS_TAG = "v1.0.0"
    LAST_RELEASE = "1.6.0"

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)

    @staticmethod
    def build(cmd, outdir: Path, pattern: str, timeout=900, cwd: Path = REPO) -> Path:
        """Run the package build CMD (in CWD, without the unit tests) and return
        the one file matching PATTERN it left in OUTDIR; ProductError otherwise."""
        outdir.mkdir(parents=True, exist_ok=True)
        # The unit tests have their own stage (make check); the package build
        # for the system tests does not run them a second time.
        env = dict(os.environ)
        env["DEB_BUILD_OPTIONS"] = (env.get("DEB_BUILD_OPTIONS", "") + " nocheck").strip()
        cp = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
        if cp.returncode != 0:
            raise ProductError(f"{' '.join(map(str, cmd))} failed ({cp.returncode}):\n"
                               f"{cp.stdout[-3000:]}\n{cp.stderr[-5000:]}")
        found = sorted(outdir.glob(pattern))
        if len(found) != 1:
            raise ProductError(f"{' '.join(map(str, cmd))}: expected one {pattern} in {outdir}, "
                               f"found {[p.name for p in found]}")
        return found[0]

    @functools.cached_property
    def hos(self) -> Path:
        if os.environ.get("HOS_DEB"):
            return Path(os.environ["HOS_DEB"]).resolve()
        out = self.workdir / "current"
        return self.build([str(REPO / "tools/build-deb"), "--outdir", str(out)], out,
                           f"{PACKAGE}_*_all.deb")

    @functools.cached_property
    def hos_previous(self) -> Path:
        """Release 1.0.0 as released ($HOS_DEB_PREVIOUS overrides)."""
        if os.environ.get("HOS_DEB_PREVIOUS"):
            return Path(os.environ["HOS_DEB_PREVIOUS"]).resolve()
        return self.release(self.PREVIOUS_VERSION, self.PREVIOUS_TAG)

    @functools.cached_property
    def hos_last_release(self) -> Path:
        """The release before this version (LAST_RELEASE), as released."""
        return self.release(self.LAST_RELEASE)

    def release(self, version: str, tag: str | None = None) -> Path:
        """Release VERSION as released: `git archive` of its commit (see
        release_commit), built with that tree's own tools/build-deb."""
        commit = release_commit(version, tag)
        tree = self.workdir / f"release-src-{version}-{commit[:12]}"
        if tree.exists():
            shutil.rmtree(tree)
        tree.mkdir(parents=True)
        export_commit(commit, tree)
        if not (tree / "tools/build-deb").is_file():
            raise ProductError(f"commit {commit} (release {version}) has no tools/build-deb")
        out = self.workdir / f"release-{version}"
        deb = self.build([str(tree / "tools/build-deb"), "--outdir", str(out)], out,
                          f"{PACKAGE}_*_all.deb", cwd=tree)
        built = deb_field(deb, "Version")
        if built != version:
            raise ProductError(f"the package built from {commit} is version {built}, not {version}")
        return deb

    @functools.cached_property
    def standin_dir(self) -> Path:
        if os.environ.get("HOS_STANDIN_DIR"):
            return Path(os.environ["HOS_STANDIN_DIR"]).resolve()
        out = self.workdir / "standin"
        self.build([str(REPO / "tests/standin/build-debs"), str(out)], out,
                    f"{UPSTREAM}_5.1.1-*_all.deb")
        return out

    @functools.cached_property
    def real_server(self) -> Path:
        """Hailo's real hailo-ollama 5.1.1 for x86-64, packaged for the tests
        ($HOS_REAL_SERVER_DEB overrides; the tarball is $HOS_PEER_TARBALL,
        else ../shared/peer/ beside this repository)."""
        if os.environ.get("HOS_REAL_SERVER_DEB"):
            return Path(os.environ["HOS_REAL_SERVER_DEB"]).resolve()
        if not PEER_TARBALL.is_file():
            raise ProductError(f"{PEER_TARBALL} is missing: the real server's tarball "
                               "(set HOS_PEER_TARBALL or HOS_REAL_SERVER_DEB)")
        out = self.workdir / "real-server"
        return self.build([str(REPO / "tests/realserver/build-deb"), str(PEER_TARBALL), str(out)],
                           out, f"{UPSTREAM}_*_amd64.deb")

    def standin(self, version: str = "5.1.1") -> Path:
        found = sorted(self.standin_dir.glob(f"{UPSTREAM}_{version}-*_all.deb"))
        if not found:
            raise ProductError(f"no {UPSTREAM} {version} in {self.standin_dir}")
        return found[-1]

    @property
    def version(self) -> str:
        return deb_field(self.hos, "Version")


# ------------------------------------------------------------ installing
def apt_install(c: harness.Container, *debs: Path, options=(), timeout=600,
                check=False) -> harness.Result:
    """`apt-get install -y ./x.deb ...` inside the container (debs copied to /root/debs)."""
    args = [c.copy_in(d, DEBS_IN + "/") for d in debs]
    return c.exec(["apt-get", "install", "-y", *options, *args], env=APT_ENV, timeout=timeout,
                  check=check)


# How an unattended upgrade keeps an edited conffile (and what Ansible's apt
# module passes by default): dpkg's default answer, else the admin's version.
KEEP_CONFFILES = ("-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold")


def conffile_upgrade_check(c, old_deb: Path, new_deb: Path, output: str) -> None:
    """After an upgrade with KEEP_CONFFILES of an edited conffile: when the
    shipped conffile changed, dpkg kept the admin's and put the new one
    beside it (.dpkg-dist); when it did not change, dpkg asked nothing."""
    if deb_file(old_deb, CONFFILE) == deb_file(new_deb, CONFFILE):
        if "Configuration file '/etc/hailo/hailo-ollama.yaml'" in output or c.exists(CONFFILE + ".dpkg-dist"):
            raise ProductError("dpkg asked about a conffile that did not change upstream:\n" + output[-3000:])
    elif c.read_file(CONFFILE + ".dpkg-dist").encode() != deb_file(new_deb, CONFFILE):
        raise ProductError("the new shipped conffile is not beside the admin's as .dpkg-dist")


def apt(c: harness.Container, *args, timeout=600, check=False) -> harness.Result:
    return c.exec(["apt-get", "-y", *args], env=APT_ENV, timeout=timeout, check=check)


def dpkg_status(c, package: str = PACKAGE) -> str:
    """e.g. 'install ok installed 1.0.0', 'deinstall ok config-files 1.0.0', or ''."""
    r = c.exec(["dpkg-query", "-W", "-f", "${Status} ${Version}", package], check=False)
    return r.stdout.strip() if r.rc == 0 else ""


def installed(c, package: str = PACKAGE) -> bool:
    return dpkg_status(c, package).startswith("install ok installed")


def install_standin(c, debs: Debs, version: str = "5.1.1") -> harness.Result:
    return apt_install(c, debs.standin(version), check=True)


# ---------------------------------------------------------------- service
def main_pid(c) -> int:
    try:
        return int(c.unit_property(UNIT, "MainPID") or 0)
    except ValueError:
        return 0


def is_active(c, unit: str = UNIT) -> str:
    return c.exec(["systemctl", "is-active", unit], check=False).stdout.strip()


def is_enabled(c, unit: str = UNIT) -> str:
    return c.exec(["systemctl", "is-enabled", unit], check=False).stdout.strip()


def wait_for(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    """Poll PREDICATE until it returns a truthy value (returned) or TIMEOUT passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def start_standin_library(c: harness.Container, port: int, unit: str = "standin-library",
                          timeout: float = 30) -> None:
    """Run the stand-in package's HTTPS model library (self-signed) in C as
    the transient UNIT on PORT of loopback, and wait until it listens.
    Raises ProductError when it does not within TIMEOUT seconds."""
    c.exec(["systemd-run", f"--unit={unit}", "--quiet", "hailo-ollama-standin-library", "--port", str(port)])
    if not wait_for(lambda: "LISTEN" in c.exec(["ss", "-ltn", f"sport = :{port}"], check=False).stdout,
                    timeout):
        raise ProductError(f"the stand-in's model library ({unit}) does not listen on port {port} "
                           f"within {timeout:g} s")


def jobs(c) -> list[str]:
    r = c.exec(["systemctl", "list-jobs", "--no-legend", "--plain"], check=False)
    return [l for l in r.stdout.splitlines() if l.strip() and "No jobs" not in l]


def settle(c, timeout: float = 90) -> bool:
    """Wait until systemd has no queued job and the render oneshots are idle, so
    that the next step does not land in the middle of a (re)start."""
    return bool(wait_for(lambda: not jobs(c) and all(is_active(c, unit) in ("inactive", "failed")
                                                     for unit in (CONFIG_UNIT, RECHECK_UNIT)),
                         timeout, interval=0.2))


def answers(c, port: int = PORT, inside: bool = False) -> bool:
    """GET /api/version answers 200 with the upstream version on PORT."""
    if inside:
        r = c.exec(["curl", "-fsS", "--max-time", "3", f"http://127.0.0.1:{port}/api/version"],
                   check=False, timeout=10)
        return r.rc == 0 and '"version"' in r.stdout
    try:
        status, body = c.http("GET", "/api/version", port=port, timeout=3)
        return status == 200 and '"version"' in body
    except OSError:
        return False


def wait_answering(c, port: int = PORT, timeout: float = 60, inside: bool = False) -> bool:
    return bool(wait_for(lambda: answers(c, port, inside), timeout))


def api(c, method: str, path: str, body=None, port: int = PORT, timeout: float = 60):
    """(status, parsed JSON or text) of a request from the host."""
    status, text = c.http(method, path, port=port, body=body, timeout=timeout)
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def listed_models(c, port: int = PORT) -> set[str]:
    status, body = api(c, "GET", "/hailo/v1/list", port=port)
    if status != 200:
        raise ProductError(f"/hailo/v1/list answered {status}: {body}")
    return set(body["models"])


def tag_names(c, port: int = PORT) -> set[str]:
    status, body = api(c, "GET", "/api/tags", port=port)
    if status != 200:
        raise ProductError(f"/api/tags answered {status}: {body}")
    return {m["name"] for m in body["models"]}


def shipped_models(c) -> set[str]:
    """model:tag for every manifest the upstream package ships."""
    r = c.exec(["find", UPSTREAM_MANIFESTS, "-name", "manifest.json"])
    out = set()
    for line in r.stdout.split():
        parts = line.split("/")
        out.add(f"{parts[-3]}:{parts[-2]}")
    return out


def pull(c, model: str, port: int = PORT, stream: bool = False, timeout: float = 120):
    return api(c, "POST", "/api/pull", body={"model": model, "stream": stream}, port=port,
               timeout=timeout)


def ensure_pulled(c, model: str, port: int = PORT) -> None:
    if model not in tag_names(c, port):
        status, body = pull(c, model, port)
        if status != 200:
            raise ProductError(f"pull of {model} answered {status}: {body}")


def unload(c, model: str, port: int = PORT) -> None:
    """Unload with keep_alive 0 (the real server crashes on a second generation
    for a model whose device open failed, unless it was unloaded)."""
    try:
        api(c, "POST", "/api/generate", body={"model": model, "keep_alive": 0}, port=port, timeout=30)
    except OSError:
        pass


def journal_text(c, since: str | None = None, unit: str | None = None, lines: int = 2000) -> str:
    return strip_ansi(c.journal(unit=unit, lines=lines, since=since, extra=("-o", "cat")))


def rendered_json(c) -> dict:
    return json.loads(c.read_file(JSON))


def server_port(c) -> int:
    return int(rendered_json(c)["server"]["port"])


# --------------------------------------------------------------- settings
def write_conffile(c, text: str, how: str = "inplace") -> None:
    """Edit the conffile the way an admin would.

    inplace: truncate and write the same inode (shell redirection)
    cp:      cp a prepared file over it
    rename:  write a temp file beside it, then mv it into place (editors)
    """
    if how == "inplace":
        c.exec(["sh", "-c", f"cat > {CONFFILE}"], input=text)
    elif how == "cp":
        c.write_file("/root/hailo-ollama.yaml.new", text)
        c.exec(["cp", "/root/hailo-ollama.yaml.new", CONFFILE])
    elif how == "rename":
        tmp = "/etc/hailo/.hailo-ollama.yaml.swp-tmp"
        c.exec(["sh", "-c", f"cat > {tmp} && chmod 644 {tmp} && mv -f {tmp} {CONFFILE}"], input=text)
    else:
        raise ValueError(how)


def port_config(port, base: str = "") -> str:
    """BASE (the shipped conffile, all commented) plus an uncommented server.port."""
    return f"{base.rstrip()}\n\nserver:\n  port: {port}\n"


def preseed(c, question: str, value: str, type_: str = "string") -> None:
    c.exec(["debconf-set-selections"], input=f"{PACKAGE} {PACKAGE}/{question} {type_} {value}\n")


def reconfigure(c, timeout: float = 180) -> harness.Result:
    return c.exec(["dpkg-reconfigure", PACKAGE], env=APT_ENV, check=False, timeout=timeout)


def debconf_show(c) -> str:
    return c.exec(["debconf-show", PACKAGE], check=False).stdout


def debconf_value(c, question: str) -> str | None:
    for line in debconf_show(c).splitlines():
        m = re.match(r"^[*\s]*" + re.escape(f"{PACKAGE}/{question}") + r":\s*(.*)$", line)
        if m:
            return m.group(1).strip()
    return None


def standin_mode(c, mode: str | None) -> None:
    """Select the stand-in's mode (5.1 or 5.3); None: its default (5.1)."""
    if mode is None:
        c.exec(["rm", "-f", f"{STANDIN_CONTROL}/mode"])
    else:
        c.write_file(f"{STANDIN_CONTROL}/mode", mode + "\n")


def server_processes(c) -> list[str]:
    """Processes of the service user, as 'PID COMMAND'."""
    r = c.exec(["ps", "-u", USER, "-o", "pid=,args="], check=False)
    return [l.strip() for l in r.stdout.splitlines() if l.strip()]


def reset(c, debs: Debs, shipped_conffile: str, timeout: float = 90) -> None:
    """Bring the shared container back to the state after a plain install:
    stand-in 5.1 without device, shipped conffile, debconf port 11434,
    service active and answering on 11434."""
    if not installed(c):
        apt_install(c, debs.hos, check=True)
    standin_mode(c, None)
    c.exec(["rm", "-f", f"{STANDIN_CONTROL}/library-unreachable", "/dev/hailo0", "/dev/h1x-0"])
    changed = False
    if c.exec(["cat", CONFFILE], check=False).stdout != shipped_conffile:
        write_conffile(c, shipped_conffile, how="cp")
        changed = True
    if debconf_value(c, "port") not in (None, "", str(PORT)):
        preseed(c, "port", str(PORT))
        reconfigure(c)
        changed = True
    if changed:
        wait_for(lambda: server_port(c) == PORT, 30)
    settle(c)
    if not wait_answering(c, PORT, timeout=30 if changed else 10) or is_active(c) != "active":
        c.systemctl("reset-failed")
        c.systemctl("restart", UNIT, timeout=120)
        if not wait_answering(c, PORT, timeout=timeout):
            raise ProductError("could not bring the service back to port 11434:\n" + c.diagnostics())
        settle(c)


# ------------------------------------------------- the privilege boundary
def as_service_user(c, script: str, input=None, check: bool = True, timeout: float = 60) -> harness.Result:
    """Run the shell SCRIPT inside the container as the service user only
    (setpriv: its uid and gid, no supplementary groups), in its tree: what
    someone who took over the server can do."""
    return c.exec(["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups", "--",
                   "sh", "-c", f"cd {STATE} && {script}"], input=input, check=check, timeout=timeout,
                  env={"HOME": STATE})


# Runs inside the container as root: one line of JSON, path -> [type, uid,
# gid, mode, sha256 of a regular file | target of a symlink | ""]. Never
# follows a symlink, never opens anything but a regular file (O_NONBLOCK as
# well, should one turn into a FIFO between lstat and open). Hashes are
# cached in /run by (device, inode, size, mtime, ctime): a file whose ctime
# did not change was not written, so only new or changed files are read
# again and a snapshot takes a fraction of a second.
SNAPSHOT_SCRIPT = r"""
import hashlib, json, os, stat, sys
roots, exclude = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
CACHE = "/run/hos-test-snapshot.cache"
KINDS = {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "symlink", stat.S_IFIFO: "fifo",
         stat.S_IFSOCK: "socket", stat.S_IFCHR: "chardev", stat.S_IFBLK: "blockdev"}
try:
    with open(CACHE) as f:
        cache = json.load(f)
except (OSError, ValueError):
    cache = {}
fresh, out = {}, {}
def digest(path, st):
    key = "%d:%d:%d:%d:%d" % (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    value = cache.get(key)
    if value is None:
        h = hashlib.sha256()
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return "not a regular file any more"
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                h.update(chunk)
        finally:
            os.close(fd)
        value = h.hexdigest()
    fresh[key] = value
    return value
def record(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    kind = KINDS.get(stat.S_IFMT(st.st_mode), "other")
    extra = ""
    if kind == "file":
        try:
            extra = digest(path, st)
        except OSError as e:
            extra = "unreadable: %s" % e.strerror
    elif kind == "symlink":
        extra = os.readlink(path)
    out[path] = [kind, st.st_uid, st.st_gid, "%04o" % stat.S_IMODE(st.st_mode), extra]
for top in roots:
    if top in exclude:
        continue
    record(top)
    for dirpath, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(dirpath, d) not in exclude]
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            if full not in exclude:
                record(full)
with open(CACHE + ".tmp", "w") as f:
    json.dump(fresh, f)
os.replace(CACHE + ".tmp", CACHE)
json.dump(out, sys.stdout, separators=(",", ":"))
"""

SNAPSHOT_ROOTS = ("/etc", "/usr", "/root", "/var/lib")


def fs_snapshot(c, roots=SNAPSHOT_ROOTS, exclude=(STATE,), timeout: float = 120) -> dict[str, tuple]:
    """Every path below ROOTS but EXCLUDE (default: all but the service
    user's tree) -> (type, uid, gid, mode, sha256 | symlink target | "")."""
    r = c.exec(["python3", "-c", SNAPSHOT_SCRIPT, json.dumps(list(roots)), json.dumps(list(exclude))],
               timeout=timeout)
    return {path: tuple(entry) for path, entry in json.loads(r.stdout).items()}


def describe_entry(entry) -> str:
    kind, uid, gid, mode, extra = entry
    text = f"{kind} {uid}:{gid} {mode}"
    if kind == "file":
        text += f" sha256 {extra[:12]}"
    elif kind == "symlink":
        text += f" -> {extra}"
    return text


def snapshot_changes(before: dict, after: dict) -> list[tuple[str, str, str]]:
    """(path, 'created' | 'deleted' | 'changed', details) for every difference."""
    out = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        if old is None:
            out.append((path, "created", describe_entry(new)))
        elif new is None:
            out.append((path, "deleted", describe_entry(old)))
        else:
            what = []
            if old[0] != new[0]:
                what.append(f"type {old[0]} -> {new[0]}")
            if old[1:3] != new[1:3]:
                what.append(f"owner {old[1]}:{old[2]} -> {new[1]}:{new[2]}")
            if old[3] != new[3]:
                what.append(f"mode {old[3]} -> {new[3]}")
            if old[4] != new[4]:
                what.append("content" if new[0] == "file" else f"target {old[4]} -> {new[4]}")
            out.append((path, "changed", ", ".join(what)))
    return out


def path_allowed(path: str, patterns) -> bool:
    """PATTERNS: exact paths, 'DIR/**' (DIR and everything below it), or
    fnmatch patterns ('*' also matches '/')."""
    for pattern in patterns:
        if pattern.endswith("/**"):
            base = pattern[:-3]
            if path == base or path.startswith(base + "/"):
                return True
        elif path == pattern or fnmatch.fnmatchcase(path, pattern):
            return True
    return False


def package_files(c, package: str = PACKAGE) -> set[str]:
    """`dpkg -L PACKAGE`, with the merged-/usr aliases (/lib, /bin, /sbin)
    spelled as the snapshot sees them (below /usr)."""
    r = c.exec(["dpkg", "-L", package], check=False)
    out = set()
    for line in r.stdout.splitlines():
        line = line.strip()
        if not line.startswith("/") or line == "/.":
            continue
        for alias in ("/lib/", "/lib64/", "/bin/", "/sbin/"):
            if line.startswith(alias) or line == alias[:-1]:
                line = "/usr" + line
                break
        out.add(line)
    return out
