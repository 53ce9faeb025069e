"""How a 5.1 stand-in finds its configuration and its data: the config file in XDG_CONFIG_HOME /
XDG_CONFIG_DIRS and its keys, types, ports and listen host, the data dir in XDG_DATA_HOME / XDG_DATA_DIRS,
and the blob dir it creates there. 5.3 and 5.4 (no config file, OLLAMA_HOST) are in test_mode_53.py and
test_mode_54.py.

README.md: "Checked against the real 5.1.1 server" (ports, config errors) and /work/shared/upstream.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from standin_helpers import (
    FIVE,
    STANDIN_MODULE,
    Layout,
    Standin,
    assert_aborted,
    free_port,
)


# ---------------------------------------------------------------- 5.1 configuration
def test_the_config_in_xdg_config_home_wins_over_xdg_config_dirs(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    layout.config(layout.config_home, server={"host": "127.0.0.1", "port": free_port()})
    home_port = json.loads((layout.config_home / "hailo-ollama" / "hailo-ollama.json").read_text())["server"]["port"]
    standin = run(wait=False)
    standin.port = home_port
    standin.wait_running()
    assert f"Server running on port {home_port}" in standin.out


def test_the_first_config_dir_with_a_hailo_ollama_subdir_wins_even_without_the_file(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    (layout.config_home / "hailo-ollama").mkdir(parents=True)
    assert_aborted(run(wait=False), "json.exception.parse_error")


def test_a_later_config_dir_is_used_when_the_earlier_ones_lack_the_subdir(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    first, second = layout.tmp / "first", layout.tmp / "second"
    first.mkdir()
    layout.config(second)
    assert run({"XDG_CONFIG_DIRS": f"{first}:{second}"}).get("/").status_code == 200


def test_a_missing_config_dir_aborts(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    assert_aborted(run(wait=False), "std::runtime_error", "hailo-ollama directory not found")


def test_a_config_dir_without_the_json_file_aborts(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    (layout.etc_xdg / "hailo-ollama").mkdir()
    assert_aborted(run(wait=False), "parse_error", "empty input")


def test_bad_json_in_the_config_aborts(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(text='{"server": {"host": "127.0.0.1", ')
    assert_aborted(run(wait=False), "parse_error")


def test_a_missing_key_aborts_naming_the_key(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    path = layout.config()
    data = json.loads(path.read_text())
    del data["main_poll_time_ms"]
    path.write_text(json.dumps(data))
    assert_aborted(run(wait=False), "key 'main_poll_time_ms' not found")


def test_a_string_port_aborts(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(server={"host": "127.0.0.1", "port": str(layout.port)})
    assert_aborted(run(wait=False), "type must be number, but is string")


def test_a_port_outside_16_bits_is_truncated_as_cpp_does_and_the_server_starts(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(server={"host": "127.0.0.1", "port": layout.port + 65536},
                  library={"host": "dev-public.hailo.ai", "port": -1}, main_poll_time_ms=65536 + 100)
    standin = run()
    assert f"Server running on port {layout.port}" in standin.out
    assert standin.get("/api/version").status_code == 200


def test_16_bit_values_keep_their_low_bits_and_floats_are_truncated() -> None:
    as_u16 = STANDIN_MODULE.as_u16
    assert [as_u16(70000), as_u16(-1), as_u16(443.7), as_u16(True), as_u16(8000)] == [4464, 65535, 443, 1, 8000]
    with pytest.raises(STANDIN_MODULE.StartupError, match="type must be number, but is string"):
        as_u16("8000")


def test_a_host_name_that_resolves_to_ipv4_is_accepted(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(server={"host": "localhost", "port": layout.port})
    assert run().get("/").text == "hailo-ollama is running"


def test_5_1_aborts_on_an_ipv6_listen_host_because_it_binds_ipv4_only(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.manifests()
    layout.config(server={"host": "::", "port": layout.port})
    standin = run(wait=False)
    assert_aborted(standin, "Call to getaddrinfo() failed.")
    assert "Error. Call to getaddrinfo() failed with result=-9: Success" in standin.out


# ---------------------------------------------------------------- 5.1 data dir
def test_manifests_come_only_from_the_first_data_dir(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    layout.manifests(layout.data_home, ["qwen2:1.5b"])
    standin = run()
    assert standin.get("/hailo/v1/list").json() == {"models": ["qwen2:1.5b"]}
    assert (layout.data_home / "hailo-ollama" / "models" / "blob").is_dir()
    assert not layout.blob.exists()


def test_a_later_data_dir_is_used_when_the_earlier_ones_lack_the_subdir(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.config()
    empty, shared = layout.tmp / "empty", layout.tmp / "shared"
    empty.mkdir()
    layout.manifests(shared)
    standin = run({"XDG_DATA_DIRS": f"{empty}:{shared}"})
    assert standin.get("/hailo/v1/list").json() == {"models": FIVE}


def test_a_missing_data_dir_aborts(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.config()
    assert_aborted(run(wait=False), "hailo-ollama directory not found")


def test_a_data_dir_without_models_aborts_even_when_a_later_one_is_complete(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    (layout.data_home / "hailo-ollama").mkdir(parents=True)
    manifests = layout.data_home / "hailo-ollama" / "models" / "manifests"
    assert_aborted(run(wait=False), "filesystem error: recursive directory iterator cannot open directory",
                   f"[{manifests}]")
    assert not (layout.data_home / "hailo-ollama" / "models").exists()


def test_a_models_dir_without_manifests_aborts(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.config()
    (layout.usr_share / "hailo-ollama" / "models" / "blob").mkdir(parents=True)
    assert_aborted(run(wait=False), "recursive directory iterator cannot open directory")


# ---------------------------------------------------------------- 5.1 blob dir
def test_the_blob_dir_is_created_when_missing_but_not_recursively(
        layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    run()
    assert layout.blob.is_dir()
    assert oct(layout.blob.stat().st_mode & 0o777) == "0o755"


def test_a_file_where_the_blob_dir_goes_aborts(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    layout.blob.write_text("")
    assert_aborted(run(wait=False), "cannot create directory")


def test_a_read_only_blob_dir_still_starts(layout: Layout, run: Callable[..., Standin]) -> None:
    layout.standard()
    layout.blob.mkdir()
    layout.blob.chmod(0o555)
    assert run().get("/hailo/v1/list").json() == {"models": FIVE}
