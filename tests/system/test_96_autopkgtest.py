"""Life cycle 16: the package's as-installed tests (debian/tests, DEP-8) pass
under autopkgtest, run inside the booted container with the package
installed, the way Debian's CI runs them on a test bed.

The source tree's debian/ is copied to /root/src/debian in the container and
run as an unbuilt tree with the null runner (the container is the test bed):

    autopkgtest --no-built-binaries --ignore-restrictions=isolation-machine \\
        --summary-file=S -o OUT /root/src -- null

--no-built-binaries: nothing is built; the test Depends are satisfied by
what is installed (there is no network in the container, so apt must not
need to download anything: autopkgtest and dpkg-dev, which it uses to unpack
the tree, are in the cached root, see harness.PACKAGES).

--ignore-restrictions=isolation-machine: the tests declare isolation-machine,
and the container is indeed a throw-away booted system of its own (systemd
as PID 1). autopkgtest-virt-null up to 5.47 (bookworm's 5.28) advertises that
capability itself; from 5.48 on (trixie's 5.49) it does not, and its
--fake-capability=isolation-machine fails an assertion in 5.49 (the null
runner's scratch directory is visible to the host), so the restriction is
ignored on the autopkgtest side instead; on bookworm that changes nothing."""

import io
import re
import subprocess
import tarfile

import pytest

import product

pytestmark = pytest.mark.system

SRC = "/root/src"
OUT = "/root/autopkgtest-out"
SUMMARY = "/root/autopkgtest-summary"
TESTS = ("service-answers", "conffile-bad-edit", "reconfigure-port")
TEST_TIMEOUT = 600  # autopkgtest's own bound for one test (default 10000 s)
RUN_TIMEOUT = 1200  # the whole run

# Build leftovers in debian/ that are not source (.gitignore): a debian/files
# would make autopkgtest take the tree for a built one.
NOT_SOURCE = re.compile(r"^debian/(\.debhelper/|hailo-ollama-service/|generated/|files$|"
                        r"[^/]*\.substvars$|[^/]*\.debhelper|debhelper-build-stamp$)")


def _debian_files() -> "list[str]":
    """debian/'s source files, as tools/build-deb copies them: what git knows
    plus untracked, not-ignored files; without git, all but build leftovers."""
    cp = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                         "--", "debian"], cwd=product.REPO, capture_output=True)
    if cp.returncode == 0 and cp.stdout:
        names = [n for n in cp.stdout.decode().split("\0") if n]
    else:
        names = [str(p.relative_to(product.REPO)) for p in (product.REPO / "debian").rglob("*")
                 if p.is_file()]
    return sorted(n for n in names if not NOT_SOURCE.match(n) and (product.REPO / n).is_file())


def _copy_debian_dir(c) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in _debian_files():
            info = tar.gettarinfo(str(product.REPO / name), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with open(product.REPO / name, "rb") as f:
                tar.addfile(info, f)
    c.exec(["sh", "-c", f"rm -rf {SRC} && mkdir -p {SRC} && tar -x -C {SRC}"], input=buf.getvalue())
    assert c.exists(f"{SRC}/debian/tests/control"), "debian/tests/control was not copied"


def _summary(text: str) -> "dict[str, str]":
    """{test: result} from autopkgtest's summary file ("name  PASS")."""
    out = {}
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            out[parts[0]] = parts[1].strip()
    return out


def test_the_autopkgtests_pass_on_the_installed_package(installed_system, debs, shipped_conffile):
    c = installed_system
    try:
        _copy_debian_dir(c)
        c.exec(["rm", "-rf", OUT, SUMMARY])
        cmd = ["autopkgtest", "--no-built-binaries", "--ignore-restrictions=isolation-machine",
               f"--summary-file={SUMMARY}", "-o", OUT, f"--timeout-test={TEST_TIMEOUT}",
               SRC, "--", "null"]
        r = c.exec(cmd, check=False, timeout=RUN_TIMEOUT, env=product.APT_ENV)
        summary_text = c.exec(["cat", SUMMARY], check=False).stdout
        log = c.exec(["cat", f"{OUT}/log"], check=False).stdout
        report = (f"$ {' '.join(cmd)}\nexit status {r.rc}\n--- summary ---\n{summary_text}"
                  f"--- log (tail) ---\n{(log or r.output)[-8000:]}")

        assert r.rc == 0, report
        results = _summary(summary_text)
        for name in TESTS:
            assert results.get(name) == "PASS", f"{name}: {results.get(name, 'not run')}\n{report}"
        # the test Depends were all installed already: apt installed nothing
        installs = [int(n) for n in re.findall(r"(\d+) newly installed", log)]
        assert installs and not any(installs), (
            "satisfying the test Depends installed packages (they must be in harness.PACKAGES: "
            f"there is no network in the container)\n{report}")

        # every test left the system as it found it
        assert c.read_file(product.CONFFILE) == shipped_conffile, "the conffile was not restored"
        assert product.debconf_value(c, "port") == str(product.PORT), product.debconf_show(c)
        assert product.server_port(c) == product.PORT
        assert product.is_active(c) == "active"
        assert product.answers(c, product.PORT), "not answering on 11434 after the autopkgtests"
        assert not product.answers(c, 11435), "still answering on 11435 after the autopkgtests"
    finally:
        c.exec(["rm", "-rf", SRC, OUT, SUMMARY], check=False)
        product.reset(c, debs, shipped_conffile)
