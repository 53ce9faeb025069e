"""The privilege boundary: root's Python never imports what the service user planted.

The unit's ExecStartPre=+ runs hailo-ollama-service as root with
HOME=/var/lib/hailo-ollama and that directory as its working directory.
Without isolated mode (python3 -I), Python would process .pth files in
$HOME/.local/lib/pythonX.Y/site-packages: code the service user wrote,
run as root.
"""

import pytest

import product

pytestmark = pytest.mark.system

CANARY = "/root/hos-pth-ran-as-root"


def as_service_user(c, script: str) -> None:
    """Run ``script`` with sh as the service user (no groups), as an attacker would."""
    c.exec(["setpriv", f"--reuid={product.USER}", f"--regid={product.USER}", "--clear-groups",
            "--", "sh", "-c", script])


@pytest.fixture
def planted(installed_system):
    c = installed_system
    version = c.exec(["python3", "-c", "import sys; print('python%d.%d' % sys.version_info[:2])"]).stdout.strip()
    site = f"{product.STATE}/.local/lib/{version}/site-packages"
    # A .pth line starting with "import" is executed by site.py at start-up;
    # only root can create a file in /root.
    line = f"import os; os.getuid() == 0 and open('{CANARY}', 'w').close()\n"
    c.write_file("/tmp/zz-hos.pth", line, mode=0o644)
    c.write_file("/tmp/hos-exit.py", "raise SystemExit(99)\n", mode=0o644)
    # Also modules named like ours and like a dependency, in the working directory.
    as_service_user(c, f"mkdir -p {site} {product.STATE}/hailo_ollama_service && "
                       f"cp /tmp/zz-hos.pth {site}/ && "
                       f"cp /tmp/hos-exit.py {product.STATE}/hailo_ollama_service/__init__.py && "
                       f"cp /tmp/hos-exit.py {product.STATE}/yaml.py")
    assert c.exists(f"{site}/zz-hos.pth")
    yield c
    c.exec(["rm", "-rf", f"{product.STATE}/.local", f"{product.STATE}/hailo_ollama_service",
            f"{product.STATE}/yaml.py", CANARY])


def test_a_pth_file_or_module_in_the_service_users_home_is_never_imported_by_root(planted):
    c = planted
    # the unit's ExecStartPre=+ (root, HOME and cwd in the user's tree)
    r = c.systemctl("restart", product.UNIT, timeout=120)
    assert r.rc == 0, r.output + c.diagnostics()
    # the settings path unit's oneshot, and postinst's way of calling it
    product.write_conffile(c, product.port_config(11434, c.read_file(product.CONFFILE)) + "main_poll_time_ms: 250\n",
                           how="cp")
    assert product.wait_for(lambda: '"main_poll_time_ms": 250' in c.read_file(product.JSON), 30), c.diagnostics()
    assert product.settle(c)
    c.exec(["sh", "-c", f"cd {product.STATE} && HOME={product.STATE} hailo-ollama-service render --try-restart"])
    assert not c.exists(CANARY), "root ran a .pth file planted by the service user"
    assert product.wait_answering(c, timeout=60), c.diagnostics()
