"""Tests of checks.py against fake /proc and /dev trees."""

from __future__ import annotations

import os
import socket

from unit_helpers import write

from hailo_ollama_service import checks

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


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
    fake_proc(tmp_path, 11434, comm="hailo-ollama", unit="hailo-ollama.service")
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
