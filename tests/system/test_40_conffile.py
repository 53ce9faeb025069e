"""Life cycle 7: admin edits of the conffile are applied without a manual
restart; invalid edits leave the last good config served."""

import pytest

import product

pytestmark = pytest.mark.system

APPLY_BOUND_S = 30  # path unit -> render -> try-restart -> API answering


def _served_on(c, port, old=None):
    assert product.wait_answering(c, port, timeout=APPLY_BOUND_S), (
        f"not answering on {port} within {APPLY_BOUND_S}s; rendered port "
        f"{product.server_port(c)}")
    assert product.server_port(c) == port
    if old is not None:
        assert product.wait_for(lambda: not product.answers(c, old), 10), f"still answering on {old}"
    # let the start finish (ExecStartPost) before the next step
    assert product.settle(c), f"jobs still queued: {product.jobs(c)}"


@pytest.mark.parametrize("how,port", [("inplace", 11501), ("cp", 11502), ("rename", 11503)])
def test_a_conffile_edit_is_applied_without_a_manual_restart(installed_system, shipped_conffile,
                                                             how, port):
    c = installed_system
    product.write_conffile(c, product.port_config(port, shipped_conffile), how=how)
    _served_on(c, port, old=product.PORT)
    assert product.is_active(c) == "active"


def test_a_sed_i_edit_is_applied_without_a_manual_restart(installed_system, shipped_conffile):
    c = installed_system
    product.write_conffile(c, product.port_config(11504, shipped_conffile), how="cp")
    _served_on(c, 11504)
    c.exec(["sed", "-i", "s/^  port: 11504$/  port: 11505/", product.CONFFILE])
    assert "  port: 11505" in c.read_file(product.CONFFILE)
    _served_on(c, 11505, old=11504)


def test_after_a_burst_of_ten_edits_the_last_one_is_served(installed_system, shipped_conffile):
    c = installed_system
    ways = ["inplace", "cp", "rename"]
    ports = list(range(11511, 11521))
    for i, port in enumerate(ports):
        if i % 4 == 3:
            c.exec(["sed", "-i", f"s/^  port: {ports[i - 1]}$/  port: {port}/", product.CONFFILE])
        else:
            product.write_conffile(c, product.port_config(port, shipped_conffile), how=ways[i % 3])
    last = ports[-1]
    assert f"port: {last}" in c.read_file(product.CONFFILE)
    _served_on(c, last)
    # let every queued render/restart run out, then it must still be the last one
    product.wait_for(lambda: product.is_active(c, product.CONFIG_UNIT) in ("inactive", "failed"), 30)
    product.wait_for(lambda: False, 3)
    _served_on(c, last)
    assert product.is_active(c, product.PATH_UNIT) == "active", c.exec(
        ["systemctl", "status", "--no-pager", product.PATH_UNIT], check=False).stdout
    # and the path unit still reacts
    product.write_conffile(c, product.port_config(11522, shipped_conffile), how="rename")
    _served_on(c, 11522, old=last)


INVALID = {
    "malformed-yaml": "server:\n  port: [11506\n",
    "string-port": 'server:\n  port: "eleven"\n',
    "port-70000": "server:\n  port: 70000\n",
    "unknown-key": "server:\n  port: 11506\n  colour: blue\n",
}


@pytest.mark.parametrize("kind", list(INVALID))
def test_an_invalid_edit_keeps_the_last_good_config_served(installed_system, shipped_conffile, kind):
    c = installed_system
    good = 11509
    product.write_conffile(c, product.port_config(good, shipped_conffile), how="cp")
    _served_on(c, good)
    pid = product.main_pid(c)
    since = c.now()
    product.write_conffile(c, shipped_conffile.rstrip() + "\n\n" + INVALID[kind], how="rename")

    def error_lines():
        text = product.journal_text(c, since=since)
        return [l for l in text.splitlines() if product.CONFFILE in l]

    lines = product.wait_for(error_lines, APPLY_BOUND_S)
    journal = product.journal_text(c, since=since)
    assert lines, f"no journal line names {product.CONFFILE} after the {kind} edit:\n{journal[-3000:]}"
    assert "Traceback" not in journal, journal[-3000:]
    assert product.answers(c, good), f"no longer serving {good} after the {kind} edit"
    assert product.main_pid(c) == pid, "the server was restarted by an invalid edit"
    assert product.server_port(c) == good
    assert not product.answers(c, 11506)

    r = c.systemctl("restart", product.UNIT, timeout=120)
    assert r.rc == 0, f"restart with an invalid conffile failed:\n{r.output}\n" + c.diagnostics()
    _served_on(c, good)

    c.reboot()
    assert product.wait_for(lambda: product.is_active(c) == "active", 60), product.is_active(c)
    _served_on(c, good)


SLOW_END = "/etc/systemd/system/hailo-ollama-config.service.d/90-hos-test-slow-end.conf"


def test_an_edit_landing_as_the_render_oneshot_ends_is_still_served(installed_system, shipped_conffile):
    """While hailo-ollama-config.service runs, the .path unit does not watch;
    an edit after the render's last look at the settings can only be applied
    by the second pass (OnSuccess= recheck). That window is milliseconds
    long; a drop-in keeps the oneshot running 4 s after its render, so the
    second edit lands in it every time. (Without the second pass the edit is
    not served: checked by deleting OnSuccess= from the installed unit.)"""
    c = installed_system
    c.write_file(SLOW_END, "[Service]\nExecStartPost=/bin/sleep 4\n")
    c.systemctl("daemon-reload", check=True)
    try:
        product.write_conffile(c, product.port_config(11541, shipped_conffile), how="rename")
        assert product.wait_answering(c, 11541, timeout=APPLY_BOUND_S), c.diagnostics()
        assert product.is_active(c, product.CONFIG_UNIT) == "activating"  # in its sleep
        product.write_conffile(c, product.port_config(11542, shipped_conffile), how="rename")
        assert product.wait_answering(c, 11542, timeout=APPLY_BOUND_S), c.diagnostics()
        assert product.server_port(c) == 11542
        journal = c.journal(unit=product.RECHECK_UNIT, lines=50)
        assert "changed: /etc/xdg/hailo-ollama/hailo-ollama.json" in journal, journal
    finally:
        c.exec(["rm", "-f", SLOW_END])
        c.systemctl("daemon-reload", check=True)
        product.settle(c)


def test_edits_landing_during_restarts_never_fail_a_start(installed_system, shipped_conffile):
    """Edits racing with (re)starts: the last edit is served soon, and no start
    fails on the way (ExecStartPost must wait for the port the server was
    started with, not for a newer one)."""
    c = installed_system
    since = c.now()
    ports = list(range(11530, 11540))
    for i, port in enumerate(ports):
        c.exec(["systemctl", "restart", "--no-block", product.UNIT])
        product.write_conffile(c, product.port_config(port, shipped_conffile),
                               how=("rename", "cp", "inplace")[i % 3])
        product.wait_for(lambda: False, 0.1 * (i % 4))
    _served_on(c, ports[-1])
    journal = product.journal_text(c, since=since)
    failed = [l for l in journal.splitlines()
              if "Failed to start hailo-ollama.service" in l or "no answer from" in l]
    assert not failed, "\n".join(failed)
    assert product.is_active(c) == "active"
