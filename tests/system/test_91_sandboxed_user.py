"""The service user never runs outside the server's sandbox.

Root's entry points that re-render while the server runs (an edit of the
settings through the path unit, dpkg-reconfigure, the dpkg trigger of an
upstream upgrade, the postinst of a reinstall) must never start code as
`hailo-ollama` outside a sandbox at least as tight as the server's: such a
process could be taken over by a compromised server through /proc/PID/mem.
A poller (sandbox_watch) records every process of that user while they run;
each must be in one of the package's sandboxed units (a cgroup that systemd
kills as a whole), with their seccomp filter and no new privileges.

The watch itself is checked first: a process started as the user by root
outside any unit (what 1.3.0's setpriv step was) must be caught.
"""

from __future__ import annotations

import pytest

import product
import sandbox_watch

pytestmark = pytest.mark.system


def _summary(rows: list[dict]) -> str:
    return "\n".join(f"  pid {r['pid']} {r['comm']!r} cgroup={r['cgroup']} seccomp={r['seccomp']} "
                     f"filters={r['filters']} nnp={r['nnp']}: {r['cmd']}" for r in rows)


def test_the_watch_catches_a_process_of_the_service_user_started_outside_the_sandbox(installed_system):
    c = installed_system
    with sandbox_watch.Watch(c) as watch:
        c.exec(["setpriv", f"--reuid={product.USER}", f"--regid={product.USER}", "--clear-groups",
                "--no-new-privs", "--", "sleep", "0.5"])
    assert watch.result.get("passes", 0) > 10, watch.result
    caught = [r for r in watch.violations() if r["comm"] == "sleep"]
    assert caught, "the watch missed a process run by setpriv outside any unit:\n" + _summary(watch.seen)
    server = [r for r in watch.seen if r["cgroup"] == product.UNIT and r["comm"] == "hailo-ollama"]
    assert server and not [r for r in server if r in watch.violations()], _summary(watch.seen)


def _other_upstream(c, debs) -> str:
    return "5.1.2" if product.dpkg_status(c, product.UPSTREAM).endswith(" 5.1.1-1") else "5.1.1"


def test_no_entry_point_of_root_runs_the_service_user_outside_the_sandbox(installed_system, debs, hos_deb,
                                                                        shipped_conffile):
    c = installed_system
    original = "5.1.1" if _other_upstream(c, debs) == "5.1.2" else "5.1.2"
    with sandbox_watch.Watch(c) as watch:
        # an edit of the conffile, applied by the path unit (render --try-restart)
        product.write_conffile(c, product.port_config(11511, shipped_conffile), how="rename")
        assert product.wait_answering(c, 11511, timeout=60), c.diagnostics()
        product.write_conffile(c, shipped_conffile, how="cp")
        assert product.wait_answering(c, product.PORT, timeout=60), c.diagnostics()
        assert product.settle(c)
        # dpkg-reconfigure (postinst configure with a new debconf answer)
        product.preseed(c, "port", "11512")
        assert product.reconfigure(c).rc == 0
        assert product.wait_answering(c, 11512, timeout=60), c.diagnostics()
        product.preseed(c, "port", str(product.PORT))
        assert product.reconfigure(c).rc == 0
        assert product.wait_answering(c, product.PORT, timeout=60), c.diagnostics()
        # the dpkg trigger of an upstream upgrade that changes the manifests
        # (the render restarts the server, whose start mirrors them), and back
        before = product.listed_models(c)
        # (test_60 may have left 5.1.2 in the shared container: then this is a downgrade)
        assert product.apt_install(c, debs.standin(_other_upstream(c, debs)),
                                   options=("--allow-downgrades",)).rc == 0
        assert product.wait_for(lambda: product.answers(c) and product.listed_models(c) != before, 60), \
            "the upstream upgrade did not reach the server"
        assert product.apt_install(c, debs.standin(original), options=("--allow-downgrades",)).rc == 0
        assert product.wait_for(lambda: product.answers(c) and product.listed_models(c) == before, 60)
        # the postinst of a reinstall
        r = product.apt_install(c, hos_deb, options=("--reinstall",))
        assert r.rc == 0, r.output
        assert product.wait_answering(c, timeout=60), c.diagnostics()
        assert product.settle(c)
    assert watch.result.get("passes", 0) > 100, watch.result
    assert any(r["cgroup"] == product.UNIT and r["comm"] == "hailo-ollama" for r in watch.seen), \
        "the watch never saw the server:\n" + _summary(watch.seen)
    bad = watch.violations()
    assert not bad, "processes of hailo-ollama outside the sandbox:\n" + _summary(bad)
