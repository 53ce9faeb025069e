"""Tests of stamp.py and entry.py: an unchanged render is answered early, and any change defeats that."""

from __future__ import annotations

import os
import time

import pytest

from hailo_ollama_service import entry, stamp
from hailo_ollama_service.root import apply as applying

from unit_helpers import write

TICK = 0.03  # longer than the kernel's coarse timestamp tick, so a later write gets a later ctime


@pytest.fixture
def later(monkeypatch):
    """Pretend the stamped files are old enough to be stamped (see stamp.RACY_NS)."""
    real = time.time_ns
    monkeypatch.setattr(stamp.time, "time_ns", lambda: real() + 10 * stamp.RACY_NS)


def apply(paths, try_restart=False):
    return applying.apply(paths, True, try_restart, report=lambda _l: None, run=lambda _a: None)


def fast(paths, try_restart=False) -> bool:
    return stamp.stamp_unchanged(str(paths.root), try_restart)


@pytest.fixture
def stamped(paths, later):
    write(paths.conffile, "server:\n  port: 11500\n")
    write(paths.debconf_layer, "server:\n  host: 127.0.0.1\n")
    write(paths.upstream_manifests / "qwen2/1.5b/manifest.json", "{}")
    apply(paths, try_restart=True)
    assert fast(paths) and fast(paths, try_restart=True)
    time.sleep(TICK)
    return paths


def test_an_unchanged_render_is_answered_by_the_fast_path_without_yaml_or_argparse(stamped, capsys, monkeypatch):
    import sys
    monkeypatch.delitem(sys.modules, "yaml", raising=False)
    assert entry.fast(["--root", str(stamped.root), "render", "--keep-last-good"]) == 0
    assert capsys.readouterr().out == "unchanged\n"


def test_an_in_place_edit_of_the_same_size_defeats_it(stamped):
    stamped.conffile.write_text("server:\n  port: 11501\n")
    assert not fast(stamped)


def test_an_edit_with_its_mtime_put_back_defeats_it(stamped):
    info = stamped.conffile.stat()
    stamped.conffile.write_text("server:\n  port: 11501\n")
    os.utime(stamped.conffile, ns=(info.st_atime_ns, info.st_mtime_ns))  # touch -r
    assert stamped.conffile.stat().st_mtime_ns == info.st_mtime_ns
    assert not fast(stamped)


def test_a_file_replaced_by_rename_defeats_it(stamped):
    new = write(stamped.conffile.with_name(".swp"), stamped.conffile.read_text())
    os.rename(new, stamped.conffile)
    assert not fast(stamped)


def test_a_layer_added_or_removed_defeats_it(stamped, later):
    extra = write(stamped.layer_dir / "50-fleet.yaml", "")
    assert not fast(stamped)
    apply(stamped)
    assert fast(stamped)
    time.sleep(TICK)
    extra.unlink()
    assert not fast(stamped)


def test_a_deleted_or_changed_output_defeats_it(stamped):
    stamped.env_file.unlink()  # a reboot empties /run
    assert not fast(stamped)


def test_a_touched_output_defeats_it(stamped):
    os.chmod(stamped.dropin, 0o600)
    assert not fast(stamped)


def test_a_package_upgrade_defeats_it(stamped, monkeypatch):
    monkeypatch.setattr(stamp, "__version__", "9.9.9")
    assert not fast(stamped)


def test_a_package_file_replaced_defeats_it(stamped, monkeypatch, tmp_path):
    copy = tmp_path / "pkg"
    copy.mkdir()
    write(copy / "cli.py", "x")
    monkeypatch.setattr(stamp, "PACKAGE_DIR", str(copy))
    apply(stamped)
    assert fast(stamped)
    time.sleep(TICK)
    write(copy / ".cli.py.dpkg-new", "y")
    os.rename(copy / ".cli.py.dpkg-new", copy / "cli.py")
    assert not fast(stamped)


def test_a_new_upstream_manifest_defeats_it(stamped):
    write(stamped.upstream_manifests / "llama3.2/3b/manifest.json", "{}")
    assert not fast(stamped, try_restart=True)


def test_a_stamp_from_a_render_that_did_not_sync_does_not_answer_a_try_restart(paths, later):
    apply(paths, try_restart=False)
    assert fast(paths) and not fast(paths, try_restart=True)


def test_no_stamp_is_kept_while_a_stamped_file_is_younger_than_the_clock_can_tell(paths):
    apply(paths)
    assert not paths.stamp.exists() and not fast(paths)


def test_invalid_settings_remove_the_stamp_so_the_error_is_logged_every_time(stamped):
    write(stamped.conffile, "server:\n  port: nope\n")
    result = apply(stamped)
    assert result.error and not stamped.stamp.exists()


def test_a_stamp_others_could_write_or_of_another_format_is_ignored(stamped):
    os.chmod(stamped.stamp, 0o666)
    assert not fast(stamped)
    os.chmod(stamped.stamp, 0o644)
    stamped.stamp.write_text(stamped.stamp.read_text().replace(stamp.STAMP_HEADER, "other 2"))
    assert not fast(stamped)


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


HOT_FORBIDDEN = ("yaml", "argparse", "json", "re", "http.client", "hailo_ollama_service.config",
                 "hailo_ollama_service.cli", "hailo_ollama_service.root", "hailo_ollama_service.client",
                 "hailo_ollama_service.host")


def _imports(root, *args, as_user: bool = False) -> tuple[str, str, set]:
    """Run entry.fast in a fresh interpreter; (exit code, stdout, forbidden modules it imported).

    ``as_user``: pretend to be the service user, with a server that cannot
    be executed (``serve`` then returns 1 at its exec, after its fast path).
    """
    import subprocess
    import sys
    from pathlib import Path
    code = ("import os, sys; before = set(sys.modules); from hailo_ollama_service import entry; "
            + ("os.geteuid = lambda: 1000; os.execve = lambda *a: (_ for _ in ()).throw(OSError(8, 'no exec')); "
               if as_user else "")
            + "code = entry.fast(sys.argv[1:]); print(code); "
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
    import subprocess
    import sys

    from hailo_ollama_service.cli import main  # noqa: F401 - what the full path imports next
    done = subprocess.run([sys.executable, "-c", "import sys; from hailo_ollama_service.cli import main; "
                           f"print(sorted(m for m in sys.modules if m.startswith({HOT_FORBIDDEN!r})))"],
                          capture_output=True, text=True, timeout=30, cwd=str(paths.root),
                          env=dict(os.environ, PYTHONPATH=str(__import__("pathlib").Path(entry.__file__).parents[1])))
    assert "hailo_ollama_service.cli" in done.stdout and "argparse" in done.stdout


def test_without_a_served_address_wait_ready_takes_the_full_path(paths):
    assert _imports(paths.root, "wait-ready")[0] == "None"


@pytest.fixture
def synced(paths, later, monkeypatch):
    monkeypatch.setattr(stamp.os, "geteuid", lambda: 1000)  # as the service user
    write(paths.upstream_manifests / "qwen2/1.5b/manifest.json", "{}")
    paths.state_dir.mkdir(parents=True)
    from hailo_ollama_service.user import models as state
    state.sync(paths)
    assert stamp.sync_unchanged(str(paths.root))
    time.sleep(TICK)
    return paths


def test_an_unchanged_sync_is_answered_by_the_fast_path(synced, capsys):
    assert entry.fast(["--root", str(synced.root), "sync-models"]) == 0
    assert capsys.readouterr().out == "unchanged\n"


def test_serve_with_unchanged_models_imports_no_upper_layer_before_its_exec(synced):
    assert _imports(synced.root, "serve", as_user=True) == ("1", "", set())


@pytest.mark.parametrize("change", ["mirrored manifest deleted", "upstream manifest added", "blob pulled",
                                    "record edited", "models dir replaced"])
def test_any_change_to_the_models_or_upstream_defeats_the_sync_fast_path(synced, change):
    import shutil
    if change == "mirrored manifest deleted":
        (synced.manifests_dir / "qwen2/1.5b/manifest.json").unlink()
    elif change == "upstream manifest added":
        write(synced.upstream_manifests / "llama3.2/3b/manifest.json", "{}")
    elif change == "blob pulled":
        write(synced.blob_dir / "sha256_00", "weights")
    elif change == "record edited":
        synced.mirror_record.write_text(synced.mirror_record.read_text())
    else:
        shutil.move(synced.models_dir, synced.state_dir / "old")
        shutil.copytree(synced.state_dir / "old", synced.models_dir)
    assert not stamp.sync_unchanged(str(synced.root))


def test_as_root_sync_models_never_takes_the_fast_path(synced, monkeypatch):
    monkeypatch.setattr(entry.os, "geteuid", lambda: 0)
    assert entry.sync_args(["--root", str(synced.root), "sync-models"], {}) is None


def test_a_sync_that_warned_leaves_no_stamp_so_it_warns_again(paths, later):
    write(paths.upstream_manifests / "qwen2/1.5b/manifest.json", "{}")
    write(paths.manifests_dir / "qwen2/1.5b/manifest.json", "admin's own")
    from hailo_ollama_service.user import models as state
    _changed, warnings = state.sync(paths)
    assert warnings and not paths.sync_stamp.exists()
