"""The harness itself: containers booted at the same time (the two releases'
suites run at once, and a fleet is several containers) must not share a
cgroup, or one container's systemd tears down the other's units."""

from pathlib import Path

import pytest

import harness

pytestmark = pytest.mark.system


def cgroup_of(pid: int) -> dict[str, str]:
    """The cgroup paths of PID by hierarchy ("name=systemd", "" for the unified one)."""
    found = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        found[controllers] = path
    return found


def test_two_containers_booted_at_once_have_cgroups_of_their_own_and_leave_none(base_root):
    a = harness.Container("cgroup-a", root=base_root)
    b = harness.Container("cgroup-b", root=base_root)
    own = {c: harness.container_cgroups(f"hos-{c.run_dir.name}") for c in (a, b)}
    try:
        a.boot()
        b.boot()
        for c in (a, b):
            assert own[c], "no cgroup hierarchy found for the containers"
            inits = cgroup_of(c.init_pid)
            for cgroup in own[c]:
                assert cgroup.is_dir(), cgroup
                key = "name=systemd" if "/systemd/" in str(cgroup) else ""
                assert f"/{cgroup.name}/" in inits[key] + "/", (cgroup, inits)
        # the same unit name in both: stopping it in one leaves the other's running
        for c in (a, b):
            c.exec(["systemd-run", "--unit=hos-same-name", "sleep", "600"])
        a.systemctl("stop", "hos-same-name.service", check=True)
        assert b.systemctl("is-active", "hos-same-name.service").stdout.strip() == "active"
        assert a.systemctl("is-active", "hos-same-name.service").stdout.strip() != "active"
    finally:
        a.destroy()
        b.destroy()
    assert not [str(cgroup) for c in (a, b) for cgroup in own[c] if cgroup.exists()]
