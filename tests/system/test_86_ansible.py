"""The fleet example (issue 6): examples/ansible/playbook.yml over real SSH.

ansible-core from PyPI (in a cached virtualenv) connects to a fresh booted
container over SSH on its veth address, as it would to a Pi: preseeds the
port, installs Hailo's package (the stand-in) and ours from .deb files,
applies a conffile, verifies; a second run changes nothing; a new debconf
answer moves the server.
"""

import os
import subprocess
import sys

import pytest

import harness
import product

pytestmark = pytest.mark.system

VENV = harness.CACHE_DIR / "ansible-venv"
ANSIBLE_CORE = "ansible-core>=2.15,<2.17"
PLAYBOOK = product.REPO / "examples/ansible/playbook.yml"


@pytest.fixture(scope="module")
def ansible_playbook():
    """Path of ansible-playbook from a cached virtualenv (built from PyPI once)."""
    harness.cached_venv(VENV, [ANSIBLE_CORE])
    return VENV / "bin/ansible-playbook"


@pytest.fixture
def pi(container, tmp_path):
    """A fresh container reachable over SSH as root with a new key; returns (container, inventory)."""
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    container.exec(["install", "-d", "-m", "0700", "/root/.ssh"])
    container.write_file("/root/.ssh/authorized_keys", key.with_suffix(".pub").read_text(), mode=0o600)
    container.exec(["systemctl", "start", "ssh.service"])
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "[hailo_pis]\n"
        f"{container.ip} ansible_user=root ansible_ssh_private_key_file={key} "
        "ansible_python_interpreter=/usr/bin/python3 "
        "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n")
    return container, inventory


def play(binary, inventory, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", ANSIBLE_HOST_KEY_CHECKING="False",
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(inventory.parent / "ansible-local"),
               ANSIBLE_RETRY_FILES_ENABLED="False")
    return subprocess.run([str(binary), "-i", str(inventory), str(PLAYBOOK), *extra],
                          capture_output=True, text=True, env=env, timeout=900)


def recap(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stdout.splitlines() if " : ok=" in line]
    return lines[-1] if lines else done.stdout[-3000:] + done.stderr[-3000:]


def test_the_ansible_example_installs_configures_and_verifies_a_pi_over_ssh(ansible_playbook, pi, hos_deb, debs):
    c, inventory = pi
    upstream = debs.standin("5.1.1")
    common = ["-e", f"hos_deb={hos_deb}", "-e", f"hailo_model_zoo_deb={upstream}"]
    settings = '{"hos_debconf": {"port": "11500"}, "hos_conffile": "resource_limits:\\n  memory_max: \\"3G\\"\\n"}'
    first = play(ansible_playbook, inventory, *common, "-e", settings)
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    assert "failed=0" in recap(first)
    assert "[OK  ] api" in first.stdout  # the playbook's verify output
    assert product.wait_answering(c, port=11500, timeout=60), "not answering on the preseeded port"
    assert "MemoryMax=3G" in c.read_file(product.DROPIN)
    assert product.debconf_value(c, "port") == "11500"

    again = play(ansible_playbook, inventory, *common, "-e", settings)
    assert again.returncode == 0 and "changed=0" in recap(again), recap(again)

    moved = play(ansible_playbook, inventory, *common, "-e",
                 settings.replace('"11500"', '"11600"'))
    assert moved.returncode == 0, moved.stdout[-4000:]
    assert product.wait_answering(c, port=11600, timeout=60), "the new debconf answer was not applied"


def test_a_bad_conffile_from_ansible_is_refused_before_it_lands(ansible_playbook, pi, hos_deb, debs):
    c, inventory = pi
    common = ["-e", f"hos_deb={hos_deb}", "-e", f"hailo_model_zoo_deb={debs.standin('5.1.1')}"]
    done = play(ansible_playbook, inventory, *common, "-e", '{"hos_conffile": "server:\\n  port: 70000\\n"}')
    assert done.returncode != 0
    assert "server.port: must be from 1 to 65535, not 70000" in done.stdout
    assert "port: 70000" not in c.read_file(product.CONFFILE)
    assert product.answers(c, port=11434)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-m", "system"]))
