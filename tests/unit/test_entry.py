"""Tests of entry.py: the fast paths of render, wait-ready, sync-models and serve, and what they import.

The stamps they answer from are stamp.py's (tests in test_stamp.py); the
fixtures ``stamped`` and ``synced`` are in conftest.py.
"""

from __future__ import annotations

import os

import pytest

from hailo_ollama_service import entry

from unit_helpers import write


def test_an_unchanged_render_is_answered_by_the_fast_path_without_yaml_or_argparse(stamped, capsys, monkeypatch):
    import sys
    monkeypatch.delitem(sys.modules, "yaml", raising=False)
    assert entry.fast(["--root", str(stamped.root), "render", "--keep-last-good"]) == 0
    assert capsys.readouterr().out == "unchanged\n"


@pytest.mark.parametrize("argv, env, expected", [
    (["render"], {}, ("/", False)),
    (["render", "--keep-last-good", "--try-restart"], {}, ("/", True)),
    (["--root", "/r", "render"], {}, ("/r", False)),
    (["render"], {"HAILO_OLLAMA_ROOT": "/e"}, ("/e", False)),
    (["render"], {"HAILO_OLLAMA_CONFIG": "/other.yaml"}, None),
    (["render", "--help"], {}, None),
    (["check"], {}, None),
    ([], {}, None)])
def test_only_a_plain_render_is_answered_by_the_fast_path(argv, env, expected):
    assert entry.render_args(argv, env) == expected


@pytest.mark.parametrize("argv, env, expected", [
    (["wait-ready"], {}, ("/", 60.0, False, None)),
    (["wait-ready"], {"MAINPID": "42"}, ("/", 60.0, False, 42)),
    (["--root", "/r", "wait-ready", "--timeout", "5", "--quiet", "--pid", "7"], {}, ("/r", 5.0, True, 7)),
    (["wait-ready", "--timeout", "soon"], {}, None),
    (["wait-ready", "--help"], {}, None),
    (["wait-ready", "--timeout"], {}, None),
    (["wait-ready"], {"HAILO_OLLAMA_CONFIG": "/x.yaml"}, None)])
def test_wait_ready_options_are_read_like_the_full_parser_reads_them(argv, env, expected):
    assert entry.wait_args(argv, env) == expected


def test_the_fast_wait_ready_agrees_with_the_full_parser():
    from hailo_ollama_service.cli import main as cli
    full = cli.build_parser().parse_args(["wait-ready", "--timeout", "5", "--quiet", "--pid", "7"])
    assert entry.wait_args(["wait-ready", "--timeout", "5", "--quiet", "--pid", "7"], {}) == (
        "/", full.timeout, full.quiet, full.pid)
    assert entry.wait_args(["wait-ready"], {})[1] == cli.build_parser().parse_args(["wait-ready"]).timeout


HOT_FORBIDDEN = ("yaml", "argparse", "json", "re", "http.client", "__future__", "hailo_ollama_service.config",
                 "hailo_ollama_service.cli", "hailo_ollama_service.root", "hailo_ollama_service.client",
                 "hailo_ollama_service.host")


def _imports(root, *args, as_user: bool = False, call: str = "entry.fast(sys.argv[1:])") -> tuple[str, str, set]:
    """Run ``call`` (default: entry.fast) in a fresh interpreter; (its value,
    stdout, forbidden modules it imported).

    ``as_user``: pretend to be the service user, with a server that cannot
    be executed (``serve`` then returns 1 at its exec, after its fast path).
    """
    import subprocess
    import sys
    from pathlib import Path
    code = ("import os, sys; before = set(sys.modules); from hailo_ollama_service import entry; "
            + ("os.geteuid = lambda: 1000; os.execve = lambda *a: (_ for _ in ()).throw(OSError(8, 'no exec')); "
               if as_user else "")
            + f"code = {call}; print(code); "
            f"print(' '.join(m for m in set(sys.modules) - before if m.startswith({HOT_FORBIDDEN!r})))")
    # the package these tests imported (the source tree, or pybuild's build dir)
    # (and as the working directory: "python3 -c" puts it first on sys.path)
    here = str(Path(entry.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=here, OLLAMA_HOST="127.0.0.1:11434")
    env.pop("MAINPID", None)
    done = subprocess.run([sys.executable, "-c", code, "--root", str(root), *args], capture_output=True, text=True,
                          env=env, timeout=30, cwd=here)
    lines = done.stdout.splitlines()
    return lines[-2], "\n".join(lines[:-2]), set(lines[-1].split())


def test_the_fast_paths_import_no_yaml_argparse_json_nor_any_upper_layer(stamped, fake_api):
    assert _imports(stamped.root, "render", "--keep-last-good") == ("0", "unchanged", set())
    write(stamped.served, f"127.0.0.1 {fake_api.port}\n")
    code, out, heavy = _imports(stamped.root, "wait-ready", "--timeout", "5")
    assert (code, out, heavy) == ("0", f"http://127.0.0.1:{fake_api.port} answers (version 0.5.1)", set())


def test_the_import_check_sees_a_full_command_line_import_the_upper_layers(paths):
    code, _out, heavy = _imports(paths.root, "render")  # no stamp: the full path is needed
    assert code == "None" and not heavy
    _code, _out, heavy = _imports(paths.root, call="__import__('hailo_ollama_service.cli.main') and None")
    assert {"hailo_ollama_service.cli", "argparse"} <= heavy


def test_without_a_served_address_wait_ready_takes_the_full_path(paths):
    assert _imports(paths.root, "wait-ready")[0] == "None"


def test_an_unchanged_sync_is_answered_by_the_fast_path(synced, capsys):
    assert entry.fast(["--root", str(synced.root), "sync-models"]) == 0
    assert capsys.readouterr().out == "unchanged\n"


def test_serve_with_unchanged_models_imports_no_upper_layer_before_its_exec(synced):
    assert _imports(synced.root, "serve", as_user=True) == ("1", "", set())


def test_as_root_sync_models_never_takes_the_fast_path(synced, monkeypatch):
    monkeypatch.setattr(entry.os, "geteuid", lambda: 0)
    assert entry.sync_args(["--root", str(synced.root), "sync-models"], {}) is None
