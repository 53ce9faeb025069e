"""Access control (issue 20): HAProxy in front of the server, API keys, networks, TLS, the kiosk allowlist.

One container of the root flavour ``access`` (the base root plus haproxy and
ssl-cert, the package's Suggests) gets the last release, then this one as an
upgrade; the tests then turn access on and off by the conffile and by
dpkg-reconfigure, and end with a purge. Requests come from the host, over
the container's link, as a client on the LAN would send them.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import subprocess
import threading
import time

import pytest

import fleet
import harness
import product

pytestmark = pytest.mark.system

CLI = "hailo-ollama-service"
FRONT = "hailo-ollama-access.service"
INNER = 11435
MODEL = "qwen2:1.5b"
CLIENTS_VENV = harness.CACHE_DIR / "clients-venv"
CLIENTS = ("ollama>=0.4,<1", "openai>=1.30,<2")


@pytest.fixture(scope="module")
def pi(hos_deb, hos_last_release_deb, debs):
    c = harness.Container("access", root=harness.ensure_root(flavour="access"))
    try:
        c.boot()
        product.install_standin(c, debs, "5.1.1")
        c.add_device("/dev/hailo0")
        product.apt_install(c, hos_last_release_deb, check=True)
        product.apt_install(c, hos_deb, check=True)
        yield c
    finally:
        c.destroy()


def request(c, method: str, path: str, key: str | None = None, body=None, tls: bool = False,
            port: int = product.PORT, timeout: float = 30) -> tuple[int, dict, bytes]:
    """One request from the host: (status, headers, body)."""
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(c.ip, port, timeout=timeout,
                                                                       context=context)
    else:
        conn = http.client.HTTPConnection(c.ip, port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        reply = conn.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        conn.close()


def conffile(c, text: str) -> None:
    """Write the conffile and wait until the path unit's render has settled."""
    product.write_conffile(c, text)
    time.sleep(1)
    product.settle(c)


def refused(c, tls: bool = False) -> bool:
    """Does the front close a connection from the host without an answer?"""
    try:
        request(c, "GET", "/api/version", tls=tls, timeout=10)
    except (ConnectionError, http.client.HTTPException, OSError):
        return True
    return False


def access_on(c, extra: str = "", reachable: bool = True) -> None:
    """Access on with EXTRA settings; wait until the front (reloaded) answers the host, or refuses it."""
    conffile(c, "access:\n  enabled: true\n" + extra)
    product.wait_for(lambda: product.is_active(c, FRONT) == "active", 60, what="the front active")
    if reachable:
        product.wait_for(lambda: not refused(c, "tls: snakeoil" in extra) and request(
            c, "GET", "/api/version", tls="tls: snakeoil" in extra)[0] == 200, 60, what="the front answering")
    else:
        product.wait_for(lambda: refused(c), 60, what="the front refusing the host")


def new_key(c, name: str, admin: bool = False) -> str:
    r = c.exec([CLI, "keys", "add", name, *(["--admin"] if admin else [])])
    key = r.stdout.strip()
    assert re.fullmatch(r"hos_[A-Za-z0-9_-]{43}", key), r.output
    return key


def listeners(c) -> str:
    return c.exec(["ss", "-Hltnp"]).stdout


def chat(c, key: str | None, tls: bool = False) -> tuple[int, bytes]:
    status, _headers, body = request(c, "POST", "/api/chat", key, tls=tls, body={
        "model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": False})
    return status, body


def test_after_the_upgrade_access_is_off_the_server_answers_everyone_and_doctor_says_so(pi):
    c = pi
    assert product.is_enabled(c, FRONT) == "enabled"
    assert product.is_active(c, FRONT) == "inactive"
    assert request(c, "GET", "/api/tags")[0] == 200
    assert re.search(r"0\.0\.0\.0:11434 .*hailo-ollama", listeners(c))
    doc = json.loads(c.exec([CLI, "doctor", "--json"], check=False).stdout)
    check = {x["id"]: x for x in doc["checks"]}["access"]
    assert check["status"] == "warn" and "without keys" in check["found"]
    assert "access.enabled: true" in check["fix"] and "apt install haproxy" in check["fix"]


def test_access_on_by_conffile_puts_the_front_on_the_port_and_asks_for_keys_by_role(pi):
    c = pi
    access_on(c)
    ss = listeners(c)
    assert re.search(rf"127\.0\.0\.1:{INNER} .*hailo-ollama", ss), ss
    assert re.search(r"0\.0\.0\.0:11434 .*haproxy", ss), ss
    # the front's processes run as its own user; Debian's haproxy.service (in
    # this root, with its own /etc/haproxy) runs beside it, untouched
    rows = [line.split() for line in c.exec(["ps", "-o", "user:32=,unit:40=", "-C", "haproxy"]).stdout.splitlines()]
    assert {user for user, unit in rows if unit == FRONT} == {"hailo-ollama-access"}, rows
    assert product.is_active(c, "haproxy.service") == "active"
    # no key: only the version
    assert request(c, "GET", "/api/version")[0] == 200
    status, headers, body = request(c, "GET", "/api/tags")
    assert status == 401 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"].startswith("unauthorized") and headers["www-authenticate"] == "Bearer"
    assert request(c, "GET", "/api/tags", key="hos_" + "A" * 43)[0] == 401
    user, admin = new_key(c, "alice"), new_key(c, "boss", admin=True)
    # a user key: list and chat, but not pull or delete
    assert request(c, "GET", "/api/tags", key=user)[0] == 200
    status, headers, body = request(c, "POST", "/api/pull", key=user, body={"model": MODEL, "stream": False})
    assert status == 403 and json.loads(body)["error"].startswith("forbidden")
    assert request(c, "DELETE", "/api/delete", key=user, body={"model": MODEL})[0] == 403
    # an admin key may pull
    status, _h, body = request(c, "POST", "/api/pull", key=admin, body={"model": MODEL, "stream": False},
                               timeout=120)
    assert status == 200, body
    status, body = chat(c, user)
    assert status == 200 and fleet.ANSWER in json.loads(body)["message"]["content"]
    # our own tools talk to the server on loopback, without a key
    verify = c.exec([CLI, "verify"], check=False)
    assert verify.rc == 0, verify.output
    metrics = c.exec([CLI, "metrics"]).stdout
    assert "hailo_ollama_access_enabled 1" in metrics and "hailo_ollama_access_front_up 1" in metrics
    assert "hailo_ollama_up 1" in metrics
    # a revoked key stops working at once
    c.exec([CLI, "keys", "revoke", "alice"])
    assert request(c, "GET", "/api/tags", key=user)[0] == 401
    # no key in the journal or in the keys file; the file is root's alone
    journal = c.exec(["journalctl", "--no-pager", "-o", "cat"]).stdout
    assert user not in journal and admin not in journal
    stored = c.read_file("/var/lib/hailo-ollama-service/api-keys.json")
    assert admin not in stored and product.sha256(admin.encode()) in stored
    assert c.exec(["stat", "-c", "%U %a", "/var/lib/hailo-ollama-service/api-keys.json"]).stdout.split() == [
        "root", "600"]
    listing = c.exec([CLI, "keys", "list"]).stdout
    assert "boss\tadmin" in listing and "alice" not in listing


def test_a_reload_for_new_settings_lets_a_running_stream_finish(pi):
    c = pi
    access_on(c)
    admin = new_key(c, "stream-admin", admin=True)
    fleet.standin_knob(c, "token-delay", 0.6)
    main_pid = c.exec(["systemctl", "show", "-P", "MainPID", FRONT]).stdout.strip()
    lines: list[bytes] = []
    errors: list[BaseException] = []

    def stream():
        try:
            conn = http.client.HTTPConnection(c.ip, product.PORT, timeout=60)
            conn.request("POST", "/api/chat", body=json.dumps({
                "model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}),
                headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json"})
            reply = conn.getresponse()
            while True:
                line = reply.readline()
                if not line:
                    break
                lines.append(line)
        except BaseException as e:  # reported below
            errors.append(e)

    try:
        worker = threading.Thread(target=stream)
        worker.start()
        product.wait_for(lambda: len(lines) >= 2, 30, what="the first tokens")
        # a new setting of the front only: HAProxy reloads, the server is not restarted
        server_pid = product.main_pid(c)
        product.write_conffile(c, f'access:\n  enabled: true\n  networks: "{c.ip.rsplit(".", 1)[0]}.0/24"\n')
        product.wait_for(lambda: "tcp-request connection reject" in c.read_file(
            "/var/lib/hailo-ollama-service/access/haproxy.cfg"), 30, what="the new front configuration")
        product.wait_for(lambda: "Reloaded" in c.exec(["journalctl", "-u", FRONT, "-o", "cat", "--no-pager"]).stdout,
                         30, what="the front reloaded")
        assert worker.is_alive(), "the stream ended before the reload: nothing was tested"
        worker.join(120)
        assert product.main_pid(c) == server_pid
    finally:
        fleet.standin_knob(c, "token-delay", 0.05)
    assert not errors, errors
    assert json.loads(lines[-1])["done"] is True, lines[-3:]
    text = "".join(json.loads(line)["message"]["content"] for line in lines if line.strip())
    assert fleet.ANSWER in text
    assert c.exec(["systemctl", "show", "-P", "MainPID", FRONT]).stdout.strip() == main_pid  # reloaded


def test_a_network_that_is_not_allowed_is_refused_at_connect_and_loopback_always_may(pi):
    c = pi
    access_on(c, '  networks: "192.0.2.0/24"\n', reachable=False)
    assert refused(c)
    inside = c.exec(["python3", "-c", "import urllib.request;print(urllib.request.urlopen("
                     "'http://127.0.0.1:11434/api/version', timeout=10).status)"])
    assert inside.stdout.strip() == "200"
    host_net = c.ip.rsplit(".", 1)[0] + ".0/24"
    access_on(c, f'  networks: "192.0.2.0/24, {host_net}"\n')
    assert request(c, "GET", "/api/version")[0] == 200


def test_tls_with_the_snakeoil_certificate_serves_https_only(pi):
    c = pi
    access_on(c, "  tls: snakeoil\n")
    key = new_key(c, "tls-user")
    assert request(c, "GET", "/api/tags", key=key, tls=True)[0] == 200
    assert request(c, "GET", "/api/tags", tls=True)[0] == 401
    status = None
    try:
        status = request(c, "GET", "/api/version", timeout=10)[0]
    except (ConnectionError, http.client.HTTPException, OSError):
        pass
    assert status in (None, 400), "plain HTTP must not be served on the TLS port"


def clients_python():
    """A virtualenv on the host with the `ollama` and `openai` packages from PyPI."""
    return harness.cached_venv(CLIENTS_VENV, list(CLIENTS))


CLIENT_SCRIPT = r"""
import sys
import ollama, openai
url, key, model = sys.argv[1:4]
client = ollama.Client(host=url, headers={"Authorization": f"Bearer {key}"})
print("ollama-list", len(client.list().models))
# .generate(): .chat() sends "tools": [], which 5.1 answers with 500 (README)
print("ollama-chat", client.generate(model=model, prompt="hi").response)
try:
    ollama.Client(host=url).list()
    print("ollama-nokey accepted")
except ollama.ResponseError as e:
    print("ollama-nokey", e.status_code)
oa = openai.OpenAI(base_url=url + "/v1", api_key=key)
answer = oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
print("openai-chat", answer.choices[0].message.content)
try:
    openai.OpenAI(base_url=url + "/v1", api_key="hos_wrong").chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}])
    print("openai-wrongkey accepted")
except openai.AuthenticationError as e:
    print("openai-wrongkey", e.status_code)
"""


def test_curl_and_the_ollama_and_openai_python_packages_pass_a_key(pi):
    c = pi
    access_on(c)
    key = new_key(c, "clients")
    url = f"http://{c.ip}:{product.PORT}"
    curl = subprocess.run(["curl", "-sS", "--max-time", "30", "-H", f"Authorization: Bearer {key}",
                           f"{url}/api/tags"], capture_output=True, text=True, timeout=60)
    assert curl.returncode == 0 and "models" in json.loads(curl.stdout), curl.stderr
    out = subprocess.run([str(clients_python()), "-c", CLIENT_SCRIPT, url, key, MODEL], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert int(lines["ollama-list"]) >= 1
    assert fleet.ANSWER in lines["ollama-chat"] and fleet.ANSWER in lines["openai-chat"]
    assert lines["ollama-nokey"] == "401" and lines["openai-wrongkey"] == "401"


def test_the_kiosk_allowlist_offers_only_the_listed_model_and_nothing_else_can_be_pulled(pi):
    c = pi
    access_on(c, f'models:\n  allowed: "{MODEL}"\n')
    admin = new_key(c, "kiosk-admin", admin=True)
    product.wait_for(lambda: request(c, "GET", "/api/version")[0] == 200, 60, what="the server back")
    status, _h, body = request(c, "GET", "/hailo/v1/list", key=admin)
    assert status == 200 and json.loads(body)["models"] == [MODEL], body
    other = sorted(product.shipped_models(c) - {MODEL})[0]
    status, _h, body = request(c, "POST", "/api/pull", key=admin, body={"model": other, "stream": False},
                               timeout=60)
    assert status != 200 or "error" in json.loads(body), body
    conffile(c, "access:\n  enabled: true\n")
    product.wait_for(lambda: len(json.loads(request(c, "GET", "/hailo/v1/list", key=admin)[2])["models"]) > 1,
                     60, what="every model back")


def test_dpkg_reconfigure_turns_access_on_and_off(pi, shipped_conffile):
    c = pi
    conffile(c, shipped_conffile)
    product.preseed(c, "access", "true", "boolean")
    assert product.reconfigure(c).rc == 0
    product.wait_for(lambda: product.is_active(c, FRONT) == "active", 60, what="the front active")
    assert request(c, "GET", "/api/tags")[0] == 401
    product.preseed(c, "access", "false", "boolean")
    assert product.reconfigure(c).rc == 0
    product.wait_for(lambda: product.is_active(c, FRONT) == "inactive", 60, what="the front stopped")
    product.wait_for(lambda: request(c, "GET", "/api/tags")[0] == 200, 60, what="the open API back")
    assert re.search(r"0\.0\.0\.0:11434 .*hailo-ollama", listeners(c))


def test_the_service_user_can_neither_read_the_keys_nor_reach_the_fronts_process(pi):
    c = pi
    access_on(c)
    pid = c.exec(["systemctl", "show", "-P", "MainPID", FRONT]).stdout.strip()
    for path in ("/var/lib/hailo-ollama-service/api-keys.json", "/var/lib/hailo-ollama-service/access/keys.map",
                 "/var/lib/hailo-ollama-service/access/haproxy.cfg"):
        r = product.as_service_user(c, f"cat {path}", check=False)
        assert r.rc != 0 and "Permission denied" in r.stderr, (path, r.output)
    for script in (f"kill -0 {pid}", f"cat /proc/{pid}/environ", f"head -c1 /proc/{pid}/mem"):
        r = product.as_service_user(c, script, check=False)
        assert r.rc != 0, (script, r.output)
    conffile(c, "")


def test_access_on_without_haproxy_is_refused_in_one_line_and_the_open_api_keeps_serving(installed_system):
    c = installed_system
    assert not c.exists("/usr/sbin/haproxy")
    product.write_conffile(c, "access:\n  enabled: true\n")
    r = c.exec([CLI, "render"], check=False)
    assert r.rc == 1 and len(r.stderr.strip().splitlines()) == 1, r.output
    assert "sudo apt install haproxy" in r.stderr and "access.enabled" in r.stderr
    product.settle(c)
    assert product.api(c, "GET", "/api/tags")[0] == 200  # the last good configuration
    assert product.is_active(c, FRONT) == "inactive"


def test_purge_removes_the_fronts_files_the_keys_and_its_user(pi):
    c = pi
    access_on(c)
    new_key(c, "before-purge")
    r = product.apt(c, "purge", "-y", product.PACKAGE)
    assert r.rc == 0, r.output
    for path in ("/var/lib/hailo-ollama-service", "/usr/lib/systemd/system/" + FRONT):
        assert not c.exists(path), path
    assert c.exec(["getent", "passwd", "hailo-ollama-access"], check=False).rc == 2, r.output
    assert "11434" not in listeners(c)
