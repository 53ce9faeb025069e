"""Start-up and shutdown of the stand-in: the log line format, argv, the choice of mode (5.1, 5.3, 5.4),
binding the port, the HailoRT log file and the stop signals.

README.md: "What the test controls" (mode) and "Checked against the real 5.1.1 server" (logs, `Server
running on port N`, bind failures, stop).
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable

import pytest
import requests

from standin_helpers import (
    LOG_LINE,
    MANIFESTS_54,
    SIX_54,
    Layout,
    Standin,
    assert_aborted,
)


# ---------------------------------------------------------------- start-up, logs, argv, mode
def test_it_logs_like_oatpp_a_colour_block_local_time_epoch_microseconds_then_tag_and_message(
        server: Standin) -> None:
    line = next(line for line in server.out.splitlines() if "Server running on port" in line)
    assert LOG_LINE.match(line), repr(line)
    assert line.startswith("\x1b[32m I \x1b[0m|") and line.endswith(f"| MyApp:Server running on port {server.port}")
    date, clock, micros = line.split("|")[1].split()
    assert abs(int(micros) / 1e6 - time.time()) < 60
    assert f"{date} {clock}" == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(micros) // 1_000_000))


def test_it_names_the_port_it_really_listens_on_when_configured_with_port_0(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(server={"host": "127.0.0.1", "port": 0})
    standin = run(wait=False)
    deadline = time.monotonic() + 10
    while "Server running on port" not in standin.out and time.monotonic() < deadline:
        time.sleep(0.02)
    port = int(standin.out.split("Server running on port ")[1].split()[0])
    assert port != 0
    assert requests.get(f"http://127.0.0.1:{port}/api/version", timeout=5).json() == {"version": "0.5.1"}


def test_it_ignores_its_command_line_arguments(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    standin = run(args=("--version", "--help", "serve"))
    assert standin.get("/api/version").json() == {"version": "0.5.1"}


def test_the_mode_defaults_to_5_1_which_needs_a_config_file(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    assert_aborted(run(wait=False), "hailo-ollama directory not found")


def test_the_mode_comes_from_the_control_file(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    (layout.control / "mode").write_text("5.3\nanything after the first line is ignored\n")
    standin = run({"OLLAMA_HOST": f"127.0.0.1:{layout.port}"})
    assert "behaving as 5.3" in standin.out


def test_the_mode_environment_variable_overrides_the_control_file(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    (layout.control / "mode").write_text("5.3\n")
    assert "behaving as 5.1" in run({"HAILO_STANDIN_MODE": "5.1"}).out


@pytest.mark.parametrize("mode", ["6.0", "5.2", "5.5", "5.4x"])
def test_an_unknown_mode_is_refused_with_exit_2(layout: Layout, run: Callable[..., Standin], mode: str) -> None:
    standin = run({"HAILO_STANDIN_MODE": mode}, wait=False)
    assert standin.wait_exit() == 2
    assert "unknown mode" in standin.err and "5.1, 5.3 or 5.4" in standin.err


@pytest.mark.parametrize("mode", ["5.4", "5.4.0"])
def test_the_mode_5_4_is_accepted_with_or_without_a_patch_level(
        layout: Layout, run: Callable[..., Standin], mode: str) -> None:
    layout.manifests(source=MANIFESTS_54)
    standin = run({"HAILO_STANDIN_MODE": mode, "OLLAMA_HOST": f"127.0.0.1:{layout.port}"})
    assert "behaving as 5.4" in standin.out
    assert standin.get("/hailo/v1/list").json() == {"models": SIX_54}


# ---------------------------------------------------------------- binding
def test_a_port_in_use_aborts_with_couldnt_bind_after_an_error_line_on_stdout(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", layout.port))
        holder.listen()
        standin = run(wait=False)
        assert_aborted(standin, "Couldn't bind Address already in use")
    line = standin.out.splitlines()[-1]
    assert LOG_LINE.match(line) and line.startswith("\x1b[41m E ")
    assert line.endswith("| [oatpp::network::tcp::server::ConnectionProvider::instantiateServer()]:"
                         "Error. Couldn't bind. Address already in use")


def test_the_port_is_bound_before_the_data_dir_is_looked_up(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.config()  # no data dir at all
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", layout.port))
        holder.listen()
        standin = run(wait=False)
        assert_aborted(standin, "Couldn't bind")
    assert "hailo-ollama directory not found" not in standin.err


# ---------------------------------------------------------------- HailoRT log file
def test_hailort_log_is_created_in_the_working_directory_and_home(layout: Layout, server: Standin) -> None:
    assert (layout.cwd / "hailort.log").is_file()
    assert (layout.home / ".hailo" / "hailort" / "hailort.log").is_file()
    assert "HailoRT warning" not in server.err


def test_hailort_log_goes_to_hailort_logger_path_when_set(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    (layout.tmp / "logs").mkdir()
    run({"HAILORT_LOGGER_PATH": str(layout.tmp / "logs")})
    assert (layout.tmp / "logs" / "hailort.log").is_file() and not (layout.cwd / "hailort.log").exists()


def test_an_unwritable_working_directory_gives_the_hailort_warning_at_every_start(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    (layout.cwd / "hailort.log").mkdir()  # cannot be created as a file, even by root
    warning = ("HailoRT warning: Cannot create log file hailort.log! "
               "Please check the directory . write permissions.")
    first = run()
    assert warning in first.err and first.get("/").status_code == 200
    first.kill()
    assert warning in run().err


def test_a_missing_home_hailo_dir_that_cannot_be_made_is_no_failure(layout: Layout,
                                                                     run: Callable[..., Standin]) -> None:
    layout.standard()
    (layout.home / ".hailo").write_text("")  # a file where the directory would go
    assert run().get("/").status_code == 200


# ---------------------------------------------------------------- signals
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_exits_0_quickly_with_an_idle_keep_alive_client(server: Standin, signum: int) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
        client.sendall(b"GET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert client.recv(4096).startswith(b"HTTP/1.1 200")  # the connection stays open, idle
        started = time.monotonic()
        server.proc.send_signal(signum)
        assert server.wait_exit(5) == 0
        assert time.monotonic() - started < 1.5
    lines = [line.split("| ", 1)[-1] for line in server.out.splitlines()]
    stop = lines.index("MyApp:Stop signal received, please wait for server shutdown")
    assert lines[stop + 1:stop + 5] == ["generation_context:stop received", "", "Environment:", "objectsCount = 0"]
