"""Tests of host/machine.py against fake /proc and /dev trees, and its command runner."""

from __future__ import annotations

import os
import socket

from hailo_ollama_service.host import machine as checks

from proc_helpers import HEADER, HOSTILE, PASSWD, SERVICE_UID, SESSION_CGROUP, UNIT_CGROUP, V6_LOOPBACK, listen
from unit_helpers import write


def fake_proc(root, port, inode="4242", pid="77", comm="ollama", unit="ollama.service", uid="0", state="0A"):
    line = (f"   0: 00000000:{port:04X} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000"
            f"   {uid}        0 {inode} 1 0000000000000000 100 0 0 10 0\n")
    write(root / "proc/net/tcp", HEADER + line)
    write(root / "proc/net/tcp6", HEADER)
    proc = root / "proc" / pid
    (proc / "fd").mkdir(parents=True)
    os.symlink(f"socket:[{inode}]", proc / "fd/3")
    write(proc / "comm", comm + "\n")
    write(proc / "cgroup", f"0::/system.slice/{unit}\n")
    write(proc / "status", f"Name:\t{comm}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")


def test_a_free_port_has_no_holder(tmp_path):
    write(tmp_path / "proc/net/tcp", HEADER)
    assert checks.port_holder(11434, tmp_path) is None
    assert checks.port_warning(11434, tmp_path) is None


def test_a_stock_ollama_on_the_port_is_named_with_its_unit_and_the_fix(tmp_path):
    fake_proc(tmp_path, 11434)
    holder = checks.port_holder(11434, tmp_path)
    assert (holder.pid, holder.command, holder.unit) == (77, "ollama", "ollama.service")
    warning = checks.port_warning(11434, tmp_path)
    assert "port 11434 is already in use by ollama (pid 77, ollama.service)" in warning
    assert "sudo systemctl disable --now ollama.service" in warning
    assert "dpkg-reconfigure hailo-ollama-service" in warning


def test_our_own_server_on_the_port_is_not_a_problem(tmp_path):
    write(tmp_path / "etc/passwd", PASSWD)
    fake_proc(tmp_path, 11434, comm="hailo-ollama", unit="hailo-ollama.service", uid=SERVICE_UID)
    assert checks.port_holder(11434, tmp_path).is_ours
    assert checks.port_warning(11434, tmp_path) is None


def test_a_program_outside_any_service_is_named_with_its_pid(tmp_path):
    fake_proc(tmp_path, 11434, comm="python3", unit="session-1.scope")
    warning = checks.port_warning(11434, tmp_path)
    assert "python3 (pid 77)" in warning and "kill 77" in warning


def test_a_socket_not_listening_or_on_another_port_does_not_count(tmp_path):
    fake_proc(tmp_path, 11434, state="01")
    assert checks.port_holder(11434, tmp_path) is None
    assert checks.port_holder(8000, tmp_path) is None


def test_a_listener_whose_process_is_invisible_is_still_reported(tmp_path):
    fake_proc(tmp_path, 11434)
    os.unlink(tmp_path / "proc/77/fd/3")
    holder = checks.port_holder(11434, tmp_path)
    assert holder is not None and holder.pid is None
    assert "an unknown program" in checks.port_warning(11434, tmp_path)


def test_the_real_proc_finds_a_socket_this_test_listens_on():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        holder = checks.port_holder(sock.getsockname()[1])
        assert holder is not None and holder.pid == os.getpid()


def test_device_nodes_of_both_driver_generations_are_found(tmp_path):
    assert checks.device_nodes(tmp_path) == []
    write(tmp_path / "dev/hailo0", "")
    write(tmp_path / "dev/h1x-0", "")
    assert checks.device_nodes(tmp_path) == [str(tmp_path / "dev/hailo0"), str(tmp_path / "dev/h1x-0")]


def test_preflight_warns_about_binary_device_and_port_each_with_a_fix(tmp_path):
    fake_proc(tmp_path, 11434)
    warnings = checks.preflight(11434, tmp_path)
    assert len(warnings) == 3
    assert "hailo-gen-ai-model-zoo" in warnings[0]
    assert "hailortcli fw-control identify" in warnings[1]
    assert "ollama.service" in warnings[2]


def test_preflight_is_quiet_on_a_healthy_system(tmp_path):
    binary = write(tmp_path / "usr/bin/hailo-ollama", "#!/bin/sh\n")
    binary.chmod(0o755)
    write(tmp_path / "dev/hailo0", "")
    write(tmp_path / "proc/net/tcp", HEADER)
    assert checks.preflight(11434, tmp_path) == []


# ------------------------------------------------ whose socket: owner uid and cgroup, never a name
def test_a_process_named_hailo_ollama_of_another_user_is_not_our_server(tmp_path):
    write(tmp_path / "etc/passwd", PASSWD)
    listen(tmp_path, 11434, 77, 1000, UNIT_CGROUP)  # even in a cgroup of that name: the uid decides
    holder = checks.port_holder(11434, tmp_path)
    assert holder.command == "hailo-ollama" and not holder.is_ours
    assert "already in use by hailo-ollama (pid 77" in checks.port_warning(11434, tmp_path)


def test_a_process_of_the_service_user_outside_the_units_cgroup_is_not_our_server(tmp_path):
    write(tmp_path / "etc/passwd", PASSWD)
    listen(tmp_path, 11434, 77, SERVICE_UID, SESSION_CGROUP)
    assert not checks.port_holder(11434, tmp_path).is_ours
    assert checks.port_warning(11434, tmp_path) is not None


def test_a_same_named_cgroup_in_a_users_own_systemd_is_not_the_units(tmp_path):
    write(tmp_path / "etc/passwd", PASSWD)
    listen(tmp_path, 11434, 77, SERVICE_UID,
           "0::/user.slice/user-996.slice/user@996.service/app.slice/hailo-ollama.service\n")
    holder = checks.port_holder(11434, tmp_path)
    assert not holder.is_ours and holder.unit == ""  # no "systemctl disable" of a system unit it is not
    assert "kill 77" in checks.port_warning(11434, tmp_path)


def test_the_service_users_socket_held_in_the_units_cgroup_is_our_server(tmp_path):
    write(tmp_path / "etc/passwd", PASSWD)
    listen(tmp_path, 11434, 77, SERVICE_UID, UNIT_CGROUP, comm="anything at all")
    holder = checks.port_holder(11434, tmp_path)
    assert holder.is_ours and holder.unit == "hailo-ollama.service"
    assert checks.port_problem(11434, tmp_path) is None
    assert checks.port_verdict(11434, tmp_path)[0] == "ok"


def test_without_the_service_user_nothing_is_our_server(tmp_path):
    listen(tmp_path, 11434, 77, SERVICE_UID, UNIT_CGROUP)  # no etc/passwd below this root
    assert not checks.port_holder(11434, tmp_path).is_ours


def test_a_holders_name_is_escaped_in_preflights_warning(tmp_path):
    listen(tmp_path, 11434, 77, 1000, SESSION_CGROUP, comm=HOSTILE + "hailo-ollama")
    warning = next(w for w in checks.preflight(11434, tmp_path) if "port 11434" in w)
    assert "\x1b" not in warning and "\x07" not in warning and "\u202e" not in warning
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31m\\u202ehailo-ollama (pid 77)" in warning


def test_a_listener_on_ipv6_loopback_beside_our_ipv4_server_is_named_and_escaped(tmp_path):
    write(tmp_path / "etc/passwd", PASSWD)
    listen(tmp_path, 11434, 77, SERVICE_UID, UNIT_CGROUP)
    listen(tmp_path, 11434, 4242, 1000, SESSION_CGROUP, comm=HOSTILE + "hailo-ollama",
           address=V6_LOOPBACK)
    status, found, fix = checks.port_verdict(11434, tmp_path)
    assert status == "fail" and "also listens on [::1]:11434" in found and "localhost as ::1" in found
    assert "\\x1b]0;pwned" in found and "\x1b" not in found and "kill 4242" in fix
    what, _fix = checks.port_problem(11434, tmp_path)
    assert "[::1]:11434" in what and "beside hailo-ollama" in what


def test_our_server_on_both_families_is_fine(tmp_path):
    write(tmp_path / "etc/passwd", PASSWD)
    listen(tmp_path, 11434, 77, SERVICE_UID, UNIT_CGROUP, inode="9001")
    listen(tmp_path, 11434, 78, SERVICE_UID, UNIT_CGROUP, address=V6_LOOPBACK, inode="9002")
    status, found, _fix = checks.port_verdict(11434, tmp_path)
    assert status == "ok" and "0.0.0.0:11434" in found and "[::1]:11434" in found


def test_a_command_that_cannot_be_executed_is_reported_not_raised(tmp_path):
    script = tmp_path / "tool"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)  # not executable
    code, out = checks.run_command([str(script)])
    assert code == 126 and "Permission denied" in out
