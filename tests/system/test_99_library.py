"""A model library on the LAN (issue 11, part 2), booted.

One Pi of the fleet is its model library: the container ``library`` (the root
flavour ``library``: the base root plus nginx and ssl-cert from the archive,
since containers have no network) has the stand-in and our package, pulls a
model from the stand-in's simulated Hailo library, and is set up by the
Ansible example (examples/ansible/library.yml) over real SSH: nginx serves its
blob directory in place over HTTPS with ssl-cert's self-signed certificate.
The same play points a second Pi (``lan-pi``) at it through debconf; that Pi
pulls with ``hailo-ollama-service pull``, and its stand-in does what the real
server does: an HTTPS GET of /blob/sha256_<hex> on library.host:library.port
without certificate check, then the sha256 check against its manifest.

Hailo 5.4 (issue 21): before the play runs, the library Pi is upgraded to 5.4
(the stand-in's 5.4 mode and 5.4's manifests) and pulls two HEFs, one of them
one Hailo's library has at 5.3.0 only; its blob directory then holds both
layouts, as a Pi upgraded from 5.1 would. The play publishes each HEF's
.sha256 companion at the version its .version names; the Pi, switched to 5.4
for one test, pulls by version over HTTPS, falls back to 5.3.0, and refuses a
HEF tampered with after the companion was written.

The LAN: the library's network namespace holds a bridge ``lan``
(10.213.N.8/29, N the library's harness slot: inside the containers only, so
it never meets the host's 10.213.N.0/30 links) with two addresses, A
(10.213.N.9) and B (10.213.N.10), and a veth from the bridge to each Pi
(10.213.N.14). Switching the library host from A to B and back is proved by
removing the old address before the pull. The links live in the containers'
own namespaces and go away with them; the host forwards nothing.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import fleet
import harness
import product

# Release independent, and run on bookworm: the two releases' suites run at
# once, and trixie's has the other fleet tests (which release the library
# and its Pis run does not change what is tested: nginx, HTTPS, the CLI).
pytestmark = [pytest.mark.system, pytest.mark.release_independent("bookworm")]

# The library's root: the base root plus nginx and ssl-cert (harness.FLAVOURS
# is the registry of root flavours; this test registers its own).
harness.FLAVOURS.setdefault("library", ("nginx", "ssl-cert"))

ANSIBLE_DIR = product.REPO / "examples/ansible"
LIBRARY_PLAY = ANSIBLE_DIR / "library.yml"
TEMPLATE = ANSIBLE_DIR / "templates/hailo-ollama-library.conf.j2"
EXAMPLE = product.REPO / "examples/nginx/hailo-ollama-library.conf"
MODEL = "qwen2:1.5b"
ACCESS_LOG = "/var/log/nginx/hailo-ollama-library.access.log"
SITE = "/etc/nginx/sites-enabled/hailo-ollama-library.conf"
# Hailo 5.4
MANIFESTS_54 = product.REPO / "tests/standin/manifests-5.4.0"
MANIFESTS_51_ASIDE = "/root/manifests-5.1.1"  # the stand-in package's 5.1.1 manifests while 5.4 runs
COMPANIONS = "/var/lib/hailo-ollama-library"  # library.yml's hos_library_companions
MODEL_54 = "qwen2:1.5b"
HEF = "Qwen2-1.5B-Instruct.hef"
OLD_MODEL_54 = "llama3.2:1b"  # Hailo's library (the stand-in's simulated one) has it at 5.3.0 only
OLD_HEF = "Llama3.2-1B-Instruct.hef"


# ------------------------------------------------------------------ helpers
def play(inventory: Path, playbook: Path, *extra: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """ansible-playbook (test_98's runner, in the cached venv test_86 builds)."""
    return fleet.run_playbook(inventory, playbook, *extra, timeout=timeout)


def manifest_digest(c, model: str = MODEL) -> str:
    name, tag = model.split(":")
    return json.loads(c.read_file(f"{product.UPSTREAM_MANIFESTS}/{name}/{tag}/manifest.json"))["hef_h10h"]


def blob_names(c) -> list[str]:
    r = c.exec(["find", product.BLOB, "-mindepth", "1", "-maxdepth", "1", "-printf", "%f\\n"], check=False)
    return sorted(r.stdout.split())


def file_sha256(c, path: str) -> str:
    return c.exec(["sha256sum", path]).stdout.split()[0]


def cli_pull(c, model: str = MODEL, timeout: float = 300) -> harness.Result:
    return c.exec(["hailo-ollama-service", "pull", model], check=False, timeout=timeout)


def delete_model(c, model: str = MODEL) -> None:
    status, _ = product.api(c, "DELETE", "/api/delete", body={"model": model})
    assert status in (200, 404)
    assert not [n for n in blob_names(c) if n.startswith("sha256_")], blob_names(c)


def curl(c, url: str, *args: str) -> tuple[int, bytes]:
    """(HTTP status, body) of curl -k inside C (0: no answer within 10 s)."""
    r = c.exec(["sh", "-c", 'rm -f /tmp/curl.body; curl -sk --max-time 10 -o /tmp/curl.body -w "%{http_code}" "$@"; '
                'echo; base64 -w0 /tmp/curl.body 2>/dev/null', "sh", *args, url], check=False, timeout=30)
    code, _, body = r.stdout.partition("\n")
    import base64
    return int(code.strip() or 0), base64.b64decode(body.strip() or b"")


def restarts(c) -> int:
    return int(c.unit_property(product.UNIT, "NRestarts") or 0)


def use_54(c, old_model: str | None = None) -> None:
    """Upgrade C's Hailo server to 5.4: the stand-in's 5.4 mode, and 5.4's manifests where the
    package has them (5.4 does not start on 5.1's); the service mirrors them on its restart.
    OLD_MODEL is a model Hailo's library has at 5.3.0 only."""
    c.exec(["sh", "-c", f"[ -d {MANIFESTS_51_ASIDE} ] || mv {product.UPSTREAM_MANIFESTS} {MANIFESTS_51_ASIDE}; "
                        f"rm -rf {product.UPSTREAM_MANIFESTS}"])
    for manifest in sorted(MANIFESTS_54.rglob("manifest.json")):
        rel = manifest.relative_to(MANIFESTS_54)
        doc = json.loads(manifest.read_text())
        if old_model and ":".join(rel.parts[:2]) == old_model:
            doc["standin"]["library_versions"] = ["5.3.0"]
        c.write_file(f"{product.UPSTREAM_MANIFESTS}/{rel}", json.dumps(doc, indent=4) + "\n", mode=0o644)
    product.standin_mode(c, "5.4")
    c.systemctl("restart", product.UNIT, check=True, timeout=120)
    assert product.wait_answering(c, timeout=60), c.diagnostics()


def use_51(c) -> None:
    """Back to 5.1 after use_54: the package's manifests and the stand-in's default mode."""
    c.exec(["sh", "-c", f"rm -rf {product.UPSTREAM_MANIFESTS} && mv {MANIFESTS_51_ASIDE} "
                        f"{product.UPSTREAM_MANIFESTS}"])
    product.standin_mode(c, None)
    c.systemctl("restart", product.UNIT, check=True, timeout=120)
    assert product.wait_answering(c, timeout=60), c.diagnostics()


def hef_files(c) -> list[str]:
    """The blob directory's entries but 5.1's sha256_<hex> blobs: 5.4's HEFs, markers, temporary files."""
    return [n for n in blob_names(c) if not n.startswith("sha256_")]


# ------------------------------------------------------------------ the LAN
@dataclass
class Lan:
    library: harness.Container
    pi: harness.Container
    a: str  # the library's first LAN address
    b: str  # its second one
    pi_address: str
    inventory: Path
    work: Path

    def address(self, addr: str, present: bool) -> None:
        """Add or remove one of the library's addresses on its bridge."""
        verb = "add" if present else "del"
        r = harness.host_run(["ip", "-n", self.library.net.name, "addr", verb, f"{addr}/29", "dev", "lan"],
                         check=False)
        expected = ("already assigned", "File exists") if present else ("Cannot assign",)
        assert r.returncode == 0 or any(text in r.stderr for text in expected), r.stderr


def make_lan(library: harness.Container) -> tuple[str, str]:
    """The bridge in the library's namespace and its two addresses A and B."""
    base = f"{harness.NET_PREFIX}.{library.net.n}"
    a, b = f"{base}.9", f"{base}.10"
    lib = library.net.name
    for cmd in (["ip", "-n", lib, "link", "add", "lan", "type", "bridge"],
                # removing A must keep B (a secondary address of the same subnet)
                ["ip", "netns", "exec", lib, "sysctl", "-qw", "net.ipv4.conf.lan.promote_secondaries=1"],
                ["ip", "-n", lib, "addr", "add", f"{a}/29", "dev", "lan"],
                ["ip", "-n", lib, "addr", "add", f"{b}/29", "dev", "lan"],
                ["ip", "-n", lib, "link", "set", "lan", "up"]):
        harness.host_run(cmd)
    return a, b


def attach(library: harness.Container, pi: harness.Container, k: int) -> str:
    """A veth from the library's bridge (port pi<K>) to PI (lan0, 10.213.N.(15-K)/29); returns that address."""
    address = f"{harness.NET_PREFIX}.{library.net.n}.{15 - k}"
    lib, other = library.net.name, pi.net.name
    for cmd in (["ip", "-n", lib, "link", "add", f"pi{k}", "type", "veth", "peer", "name", "lan0", "netns", other],
                ["ip", "-n", lib, "link", "set", f"pi{k}", "master", "lan", "up"],
                ["ip", "-n", other, "addr", "add", f"{address}/29", "dev", "lan0"],
                ["ip", "-n", other, "link", "set", "lan0", "up"]):
        harness.host_run(cmd)
    return address


@pytest.fixture(scope="module")
def lan(base_root, debs, hos_deb, tmp_path_factory):
    """The library Pi (nginx in its root, a pulled model) and a Pi, linked,
    both with the stand-in 5.1.1 and our package, reachable over SSH."""
    try:
        flavour = harness.ensure_root(flavour="library")
    except harness.HarnessError as e:
        pytest.fail(f"cannot build the library root: {e}", pytrace=False)
    work = tmp_path_factory.mktemp("library")
    made = []
    try:
        library = harness.Container("library", root=flavour)
        made.append(library)
        library.boot()
        pi = harness.Container("lan-pi", root=base_root)
        made.append(pi)
        pi.boot()
        a, b = make_lan(library)
        pi_address = attach(library, pi, 1)
        key = fleet.new_key(work)
        for c in made:
            fleet.ssh_access(c, key)
            product.install_standin(c, debs, "5.1.1")
            r = product.apt_install(c, hos_deb, timeout=600)
            assert r.rc == 0, r.output[-3000:]
            assert product.wait_answering(c, timeout=60), c.diagnostics()
        # the library Pi pulls from Hailo's library (the stand-in's simulated one); then, upgraded to
        # 5.4, two HEFs: one at 5.4.0 and one Hailo has at 5.3.0 only. It stays on 5.4: its 5.1 blob
        # stays too, and is served beside the HEFs.
        product.ensure_pulled(library, MODEL)
        use_54(library, old_model=OLD_MODEL_54)
        for model in (MODEL_54, OLD_MODEL_54):
            product.ensure_pulled(library, model)
        assert hef_files(library) == sorted([HEF, f"{HEF}.version", OLD_HEF, f"{OLD_HEF}.version"])
        assert library.read_file(f"{product.BLOB}/{OLD_HEF}.version") == "5.3.0\n"
        common = (f"ansible_user=root ansible_ssh_private_key_file={key} ansible_python_interpreter=/usr/bin/python3 "
                  "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'")
        inventory = work / "inventory.ini"
        inventory.write_text(f"[hailo_pis]\n{pi.ip} {common}\n{library.ip} {common}\n\n"
                             f"[hailo_library]\n{library.ip} hos_library_address={a} {common}\n")
        yield Lan(library, pi, a, b, pi_address, inventory, work)
    finally:
        try:
            fleet.close_ssh_masters(work)
        finally:
            for c in made:
                c.destroy()


# ------------------------------------------------------------------ tests
def test_the_example_nginx_site_is_the_play_s_template_with_its_defaults(tmp_path, prerequisites):
    import yaml  # python3-yaml: the product's own dependency

    plays = yaml.safe_load(LIBRARY_PLAY.read_text())
    out = tmp_path / "site.conf"
    render = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "vars": plays[0]["vars"],
               "tasks": [{"ansible.builtin.template": {"src": str(TEMPLATE), "dest": str(out)}}]}]
    (tmp_path / "render.yml").write_text(json.dumps(render))
    (tmp_path / "hosts").write_text("localhost\n")
    done = play(tmp_path / "hosts", tmp_path / "render.yml", "-e",
                f"ansible_python_interpreter={fleet.ANSIBLE_VENV / 'bin/python3'}", timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert out.read_text() == EXAMPLE.read_text(), "examples/nginx/ is not the template's rendering: copy it"


def test_the_play_sets_up_the_library_and_points_the_pi_at_it_then_changes_nothing(lan):
    first = play(lan.inventory, LIBRARY_PLAY)
    assert first.returncode == 0, first.stdout[-8000:] + first.stderr[-3000:]
    assert all("failed=0" in r for r in fleet.recaps(first).values()), fleet.recaps(first)
    lib, pi = lan.library, lan.pi
    assert product.is_active(lib, "nginx.service") == "active"
    assert product.is_enabled(lib, "nginx.service") == "enabled"
    assert lib.exec(["readlink", SITE]).stdout.strip() == "/etc/nginx/sites-available/hailo-ollama-library.conf"
    assert "disable_symlinks on;" in lib.read_file(SITE)
    config = json.loads(pi.exec(["hailo-ollama-service", "config", "--json"]).stdout)
    assert config["library.host"] == {"value": lan.a, "source": product.DEBCONF_LAYER}, config["library.host"]
    assert config["library.port"]["value"] == 443
    assert product.rendered_json(pi)["library"] == {"host": lan.a, "port": 443}
    # the library Pi keeps Hailo's library (it is the one that downloads from there)
    assert product.rendered_json(lib)["library"] == product.SEED["library"]
    assert f"library {lan.a}:443 answers HTTPS" in first.stdout  # the play's doctor check
    # Hailo 5.4: each HEF's companion, at the version its .version names, in root's own directory
    for version, hef in (("5.4.0", HEF), ("5.3.0", OLD_HEF)):
        digest = file_sha256(lib, f"{product.BLOB}/{hef}")
        assert lib.read_file(f"{COMPANIONS}/v{version}/blob/{hef[:-4]}.sha256") == f"{digest}  {hef}\n"
    found = lib.exec(["find", COMPANIONS, "-printf", "%y %u %g %m %P\\n"]).stdout.splitlines()
    assert sorted(found) == ["d root root 755 ", "d root root 755 v5.3.0", "d root root 755 v5.3.0/blob",
                             "d root root 755 v5.4.0", "d root root 755 v5.4.0/blob",
                             f"f root root 644 v5.3.0/blob/{OLD_HEF[:-4]}.sha256",
                             f"f root root 644 v5.4.0/blob/{HEF[:-4]}.sha256"], found
    hashed = f'"GET /v5.4.0/blob/{HEF} HTTP/1.1" 200 '  # hashed from the bytes nginx serves, on loopback
    assert [line for line in lib.read_file(ACCESS_LOG).splitlines() if hashed in line and
            line.startswith("127.0.0.1 ")], lib.read_file(ACCESS_LOG)[-2000:]

    log_size = len(lib.read_file(ACCESS_LOG))
    again = play(lan.inventory, LIBRARY_PLAY)
    assert again.returncode == 0, again.stdout[-6000:]
    assert all("changed=0" in r and "failed=0" in r for r in fleet.recaps(again).values()), fleet.recaps(again)
    assert ".hef HTTP/1.1" not in lib.read_file(ACCESS_LOG)[log_size:]  # a companion is made once: nothing hashed


def test_a_pi_pulls_the_library_pi_s_blob_over_https_and_checks_its_hash(lan):
    lib, pi = lan.library, lan.pi
    digest = manifest_digest(pi)
    assert file_sha256(lib, f"{product.BLOB}/sha256_{digest}") == digest
    delete_model(pi)
    r = cli_pull(pi)
    assert r.rc == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == f"downloading {MODEL} from library {lan.a}:443"
    assert "verifying sha256 digest" in lines and lines[-1] == "success"
    assert blob_names(pi) == [f"sha256_{digest}"]
    assert file_sha256(pi, f"{product.BLOB}/sha256_{digest}") == digest
    log = lib.read_file(ACCESS_LOG)
    assert f'{lan.pi_address} - - ' in log and f'"GET /blob/sha256_{digest} HTTP/1.1" 200 ' in log, log[-2000:]
    assert MODEL in product.tag_names(pi)
    doctor = json.loads(pi.exec(["hailo-ollama-service", "doctor", "--json"], check=False, timeout=60).stdout)
    check = next(c for c in doctor["checks"] if c["id"] == "library")
    assert check["status"] == "ok" and check["found"].startswith(f"library {lan.a}:443 answers HTTPS"), check


def test_the_library_serves_exact_blob_names_only_never_a_listing_a_link_a_fifo_or_a_temporary_file(lan):
    lib, pi = lan.library, lan.pi
    digest = manifest_digest(pi)
    url = f"https://{lan.a}"
    status, body = curl(pi, f"{url}/blob/sha256_{digest}")
    assert status == 200 and hashlib.sha256(body).hexdigest() == digest
    assert curl(pi, f"{url}/blob/sha256_{digest}", "-I")[0] == 200
    # planted by the service user, who owns the tree and is treated as hostile
    link, fifo = "sha256_" + "a" * 64, "sha256_" + "b" * 64
    product.as_service_user(lib, f"cd models/blob && ln -s /etc/passwd {link} && mkfifo {fifo} && "
                                 f"head -c 100 sha256_{digest} > sha256_{digest}.tmp")
    try:
        for path in ("/", "/blob", "/blob/", "/manifests/qwen2/1.5b/manifest.json", f"/blob/sha256_{digest}.tmp",
                     f"/blob/SHA256_{digest}", "/blob/../mirror-state.json", "/blob/sha256_" + "c" * 64):
            status, body = curl(pi, url + path)
            assert status == 404, (path, status, body[:200])
        status, body = curl(pi, f"{url}/blob/{link}")
        assert status in (403, 404) and b"root:" not in body, (status, body[:200])
        status, _ = curl(pi, f"{url}/blob/{fifo}")
        assert status in (403, 404), status  # answered at once, not stalled on the FIFO
        for method in ("POST", "PUT", "DELETE"):
            assert curl(pi, f"{url}/blob/sha256_{digest}", "-X", method)[0] == 403, method
        assert curl(pi, f"http://{lan.a}/blob/sha256_{digest}")[0] in (0, 404)  # no plain-HTTP library
    finally:
        product.as_service_user(lib, f"rm -f models/blob/{link} models/blob/{fifo} models/blob/sha256_{digest}.tmp")
    assert product.answers(lib)


def test_the_library_serves_5_4_hefs_and_companions_by_version_only_never_a_marker_a_link_or_a_temporary_file(lan):
    lib, pi = lan.library, lan.pi
    url, stem = f"https://{lan.a}", HEF[:-4]
    digest = file_sha256(lib, f"{product.BLOB}/{HEF}")
    status, body = curl(pi, f"{url}/v5.4.0/blob/{HEF}")
    assert status == 200 and hashlib.sha256(body).hexdigest() == digest
    assert curl(pi, f"{url}/v5.4.0/blob/{stem}.sha256") == (200, f"{digest}  {HEF}\n".encode())
    for path in (f"/v5.4.0/blob/{HEF}", f"/v5.4.0/blob/{stem}.sha256"):  # 5.4's probe
        status, body = curl(pi, url + path, "-r", "0-0")
        assert (status, len(body)) == (206, 1), (path, status)
    assert curl(pi, f"{url}/v5.4.0/blob/{HEF}", "-I")[0] == 200
    # a HEF answers at every listed version, its companion only at the version it was pulled at
    assert curl(pi, f"{url}/v5.3.0/blob/{OLD_HEF[:-4]}.sha256")[0] == 200
    assert curl(pi, f"{url}/v5.4.0/blob/{OLD_HEF[:-4]}.sha256")[0] == 404
    link, fifo = "Link.hef", "Fifo.hef"
    product.as_service_user(lib, f"cd models/blob && ln -s /etc/passwd {link} && mkfifo {fifo} && "
                                 f"echo 5.4.0 > {link}.version && head -c 100 {HEF} > {HEF}.7.tmp")
    try:
        for path in (f"/v5.5.0/blob/{HEF}", f"/v5.4.1/blob/{HEF}", f"/v5.4/blob/{HEF}", f"/v5.4.0/blob/{HEF}.version",
                     f"/v5.4.0/blob/{HEF}.7.tmp", f"/v5.4.0/blob/{stem}.hef.sha256", f"/v5.4.0/blob/{stem}.SHA256",
                     f"/v5.4.0/blob/{stem}.HEF", "/v5.4.0/blob/", "/v5.4.0/", f"/v5.4.0/{HEF}", f"/blob/{HEF}",
                     f"/v5.4.0/blob/.{HEF}", "/v5.4.0/blob/..%2fmirror-state.json", "/v5.4.0/blob/Missing.hef",
                     "/v5.4.0/blob/Missing.sha256", f"/v5.4.0/blob/{link[:-4]}.sha256"):
            status, body = curl(pi, url + path)
            assert status == 404, (path, status, body[:200])
        status, body = curl(pi, f"{url}/v5.4.0/blob/{link}")
        assert status in (403, 404) and b"root:" not in body, (status, body[:200])
        assert curl(pi, f"{url}/v5.4.0/blob/{fifo}")[0] in (403, 404)  # answered at once, not stalled
        for method in ("POST", "PUT", "DELETE"):
            assert curl(pi, f"{url}/v5.4.0/blob/{HEF}", "-X", method)[0] == 403, method
            assert curl(pi, f"{url}/v5.4.0/blob/{stem}.sha256", "-X", method)[0] == 403, method
    finally:
        product.as_service_user(lib, f"rm -f models/blob/{link} models/blob/{link}.version models/blob/{fifo} "
                                     f"models/blob/{HEF}.7.tmp")


def tamper(lib, digest: str, name: str = "") -> str:
    """Change the first byte of the library's blob (sha256_DIGEST, or NAME whose sha256 is DIGEST), as its
    (hostile) owner can; returns the original byte."""
    path = f"models/blob/{name or 'sha256_' + digest}"
    original = product.as_service_user(lib, f"head -c 1 {path} | od -An -tx1").stdout.strip()
    product.as_service_user(lib, f"printf '\\377' | dd of={path} bs=1 count=1 conv=notrunc status=none")
    assert file_sha256(lib, f"{product.STATE}/{path}") != digest
    return original


def restore(lib, digest: str, original: str, name: str = "") -> None:
    path = f"models/blob/{name or 'sha256_' + digest}"
    product.as_service_user(lib, f"printf '\\{int(original, 16):03o}' | dd of={path} bs=1 count=1 conv=notrunc "
                                 "status=none")
    assert file_sha256(lib, f"{product.STATE}/{path}") == digest


def test_a_tampered_blob_on_the_library_is_refused_and_leaves_nothing_on_the_pi(lan):
    lib, pi = lan.library, lan.pi
    digest = manifest_digest(pi)
    delete_model(pi)
    original = tamper(lib, digest)
    try:
        before = restarts(pi)
        since = pi.now()
        r = cli_pull(pi)
        assert r.rc == 1, r.output
        # upstream 5.1 aborts on the failed check; the pull waits for the restart and has the blob deleted
        assert f"the pull of {MODEL} from library {lan.a}:443 failed and the server restarted" in r.stderr, r.stderr
        assert "sha256 does not match the manifest" in r.stderr
        assert "the server deleted the blob the failed download left" in r.stderr
        assert blob_names(pi) == [], blob_names(pi)  # neither the refused blob nor a .tmp
        assert MODEL not in product.tag_names(pi)
        assert restarts(pi) == before + 1
        assert "bad hash" in product.journal_text(pi, since=since, unit=product.UNIT)
        assert product.is_active(pi) == "active" and product.answers(pi)
    finally:
        restore(lib, digest, original)
    r = cli_pull(pi)
    assert r.rc == 0 and blob_names(pi) == [f"sha256_{digest}"], r.output


def test_upstream_5_3_pulls_from_the_library_on_443_and_reports_a_tampered_blob_without_stopping(lan):
    lib, pi = lan.library, lan.pi
    digest = manifest_digest(pi)
    product.standin_mode(pi, "5.3")
    try:
        pi.systemctl("restart", product.UNIT, check=True, timeout=120)
        assert product.wait_answering(pi, timeout=60)
        assert f"HAILO_OLLAMA_LIBRARY_HOST={lan.a}\n" in pi.read_file(product.ENV_FILE)  # the host only: 443
        delete_model(pi)
        r = cli_pull(pi)
        assert r.rc == 0 and blob_names(pi) == [f"sha256_{digest}"], r.output
        delete_model(pi)
        before = restarts(pi)
        original = tamper(lib, digest)
        try:
            r = cli_pull(pi)
        finally:
            restore(lib, digest, original)
        assert r.rc == 1
        assert (f"the pull of {MODEL} from library {lan.a}:443 failed: hash verification failed for downloaded blob"
                in r.stderr), r.stderr
        assert blob_names(pi) == [] and restarts(pi) == before
    finally:
        product.standin_mode(pi, None)
        pi.systemctl("restart", product.UNIT, check=True, timeout=120)
        assert product.wait_answering(pi, timeout=60)


def test_hailo_5_4_pulls_the_library_pi_s_hef_by_version_falls_back_to_5_3_0_and_refuses_a_tampered_one(lan):
    lib, pi = lan.library, lan.pi
    digest = file_sha256(lib, f"{product.BLOB}/{HEF}")
    use_54(pi)
    try:
        assert f"HAILO_OLLAMA_LIBRARY_HOST={lan.a}\n" in pi.read_file(product.ENV_FILE)  # the host only: 443
        log_size = len(lib.read_file(ACCESS_LOG))
        r = cli_pull(pi, MODEL_54)
        assert r.rc == 0, r.output
        lines = r.stdout.splitlines()
        assert lines[0] == f"downloading {MODEL_54} from library {lan.a}:443"
        assert lines[-3:] == ["verifying sha256 digest", "resolved_version: 5.4.0", "success"], lines
        assert hef_files(pi) == [HEF, f"{HEF}.version"]
        assert file_sha256(pi, f"{product.BLOB}/{HEF}") == digest
        assert pi.read_file(f"{product.BLOB}/{HEF}.version") == "5.4.0\n"
        asked = [line.split('"')[1] + " " + line.split('"')[2].split()[0]
                 for line in lib.read_file(ACCESS_LOG)[log_size:].splitlines()
                 if line.startswith(f"{lan.pi_address} ") and '"GET ' in line]
        stem = HEF[:-4]
        assert asked == [f"GET /v5.4.0/blob/{HEF} HTTP/1.1 206", f"GET /v5.4.0/blob/{stem}.sha256 HTTP/1.1 206",
                         f"GET /v5.4.0/blob/{stem}.sha256 HTTP/1.1 200", f"GET /v5.4.0/blob/{HEF} HTTP/1.1 200"], asked

        # at 5.3.0 only on the library: 5.4.0 lacks the companion, so the server falls back
        r = cli_pull(pi, OLD_MODEL_54)
        assert r.rc == 0, r.output
        assert "warning: could not get the requested version (5.4.0). falling back to v5.3.0" in r.stdout
        assert r.stdout.splitlines()[-2:] == ["resolved_version: 5.3.0", "success"], r.stdout
        assert pi.read_file(f"{product.BLOB}/{OLD_HEF}.version") == "5.3.0\n"
        assert file_sha256(pi, f"{product.BLOB}/{OLD_HEF}") == file_sha256(lib, f"{product.BLOB}/{OLD_HEF}")

        # not on the library at all
        r = cli_pull(pi, "qwen3:1.7b")
        assert r.rc == 1 and ("no complete blob pair (HEF + .sha256 companion) for Qwen3-1.7B-Instruct.hef at "
                              "v5.4.0 or fallback v5.3.0") in r.stderr, r.output

        # changed by the library Pi's service user after the play wrote its companion: refused
        status, _ = product.api(pi, "DELETE", "/api/delete", body={"model": MODEL_54})
        assert status == 200 and HEF not in hef_files(pi)
        before = restarts(pi)
        original = tamper(lib, digest, HEF)
        try:
            r = cli_pull(pi, MODEL_54)
        finally:
            restore(lib, digest, original, HEF)
        assert r.rc == 1
        assert (f"the pull of {MODEL_54} from library {lan.a}:443 failed: hash verification failed for {HEF} "
                "at v5.4.0") in r.stderr, r.output
        assert HEF not in hef_files(pi) and f"{HEF}.version" not in hef_files(pi), hef_files(pi)
        assert not [n for n in hef_files(pi) if n.endswith(".tmp")], hef_files(pi)
        assert restarts(pi) == before and product.answers(pi)
    finally:
        for model in (MODEL_54, OLD_MODEL_54):
            product.api(pi, "DELETE", "/api/delete", body={"model": model})
        use_51(pi)
    assert hef_files(pi) == [], hef_files(pi)


def _pulls_from(pi, library: str, digest: str) -> None:
    """With the model deleted, the CLI's pull names LIBRARY and leaves its blob."""
    delete_model(pi)
    r = cli_pull(pi)
    assert r.rc == 0, r.output
    assert r.stdout.splitlines()[0] == f"downloading {MODEL} from library {library}"
    assert blob_names(pi) == [f"sha256_{digest}"]


def test_switching_the_library_by_dpkg_reconfigure_and_by_the_conffile_pulls_from_the_new_one(
        lan, shipped_conffile):
    pi = lan.pi
    digest = manifest_digest(pi)
    try:
        # dpkg-reconfigure, with the answer preseeded: to address B, and A gone
        product.preseed(pi, "library-host", lan.b)
        r = product.reconfigure(pi)
        assert r.rc == 0, r.output
        assert product.rendered_json(pi)["library"] == {"host": lan.b, "port": 443}
        assert product.wait_answering(pi, timeout=60)
        lan.address(lan.a, present=False)
        _pulls_from(pi, f"{lan.b}:443", digest)
        lan.address(lan.a, present=True)

        # the conffile wins over debconf: a name for address A, and B gone
        pi.exec(["sh", "-c", f"echo '{lan.a} library.lan' >> /etc/hosts"])
        product.write_conffile(pi, shipped_conffile + "\nlibrary:\n  host: library.lan\n")
        assert product.wait_for(lambda: product.rendered_json(pi)["library"]["host"] == "library.lan", 30)
        assert product.settle(pi) and product.wait_answering(pi, timeout=60)
        config = json.loads(pi.exec(["hailo-ollama-service", "config", "--json"]).stdout)
        assert config["library.host"] == {"value": "library.lan", "source": product.CONFFILE}
        lan.address(lan.b, present=False)
        _pulls_from(pi, "library.lan:443", digest)
    finally:
        lan.address(lan.a, present=True)
        lan.address(lan.b, present=True)
        pi.exec(["sed", "-i", "/ library.lan$/d", "/etc/hosts"])
        product.write_conffile(pi, shipped_conffile, how="cp")
        product.preseed(pi, "library-host", lan.a)
        product.reconfigure(pi)



# ------------------------------------------------------- Hailo's real server
REAL_MODEL = "hos-lan-model:1b"  # a model the admin adds: its blob is the library's qwen2 blob


@pytest.fixture(scope="module")
def real_pi(lan, base_root, real_server_deb, hos_deb):
    """A third Pi on the LAN with Hailo's real 5.1.1 server (x86-64 build) and our package."""
    c = harness.Container("lan-real", root=base_root)
    try:
        c.boot()
        address = attach(lan.library, c, 2)
        product.apt_install(c, real_server_deb, check=True)
        r = product.apt_install(c, hos_deb, timeout=600)
        assert r.rc == 0, r.output[-3000:]
        yield c, address
    finally:
        c.destroy()


def test_hailo_s_real_5_1_1_server_pulls_from_the_nginx_library_and_a_tampered_blob_leaves_nothing(lan, real_pi):
    c, address = real_pi
    lib = lan.library
    digest = manifest_digest(lan.pi)
    manifest = json.loads(c.read_file(f"{product.UPSTREAM_MANIFESTS}/qwen2/1.5b/manifest.json"))
    manifest["hef_h10h"] = digest
    model, tag = REAL_MODEL.split(":")
    product.as_service_user(c, f"mkdir -p models/manifests/{model}/{tag} && "
                               f"cat > models/manifests/{model}/{tag}/manifest.json", input=json.dumps(manifest))
    product.preseed(c, "library-host", lan.a)
    assert product.reconfigure(c).rc == 0
    assert product.rendered_json(c)["library"] == {"host": lan.a, "port": 443}
    c.systemctl("restart", product.UNIT, check=True, timeout=120)
    assert product.wait_answering(c, timeout=60), c.diagnostics()
    assert REAL_MODEL in product.listed_models(c)

    r = cli_pull(c, REAL_MODEL)
    assert r.rc == 0, r.output + c.diagnostics()
    assert r.stdout.splitlines()[0] == f"downloading {REAL_MODEL} from library {lan.a}:443"
    assert r.stdout.splitlines()[-1] == "success"  # the verdict of a non-streaming pull: 5.1.1 cuts the stream
    assert file_sha256(c, f"{product.BLOB}/sha256_{digest}") == digest
    assert f'{address} - - ' in lib.read_file(ACCESS_LOG)

    delete_model(c, REAL_MODEL)
    before = restarts(c)
    original = tamper(lib, digest)
    try:
        r = cli_pull(c, REAL_MODEL)
    finally:
        restore(lib, digest, original)
    assert r.rc == 1, r.output
    assert f"the pull of {REAL_MODEL} from library {lan.a}:443 failed and the server restarted" in r.stderr, r.stderr
    assert "the server deleted the blob the failed download left" in r.stderr
    assert blob_names(c) == [], blob_names(c)
    assert restarts(c) == before + 1
    assert "bad hash" in product.journal_text(c, unit=product.UNIT)
    assert product.is_active(c) == "active" and product.answers(c)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-m", "system"]))
