"""Life cycle 10: upgrading the upstream package (stand-in 5.1.1 -> 5.1.2)."""

import pytest

import product

pytestmark = pytest.mark.system


def test_upgrading_upstream_shows_the_new_manifest_and_keeps_our_json(installed_system, debs):
    c = installed_system
    if not product.dpkg_status(c, product.UPSTREAM).endswith(" 5.1.1-1"):
        pytest.fail("expected the stand-in 5.1.1 in the shared container: "
                    + product.dpkg_status(c, product.UPSTREAM))
    before_json = c.read_file(product.JSON)
    before_shipped = product.shipped_models(c)
    assert product.listed_models(c) == before_shipped

    r = product.apt_install(c, debs.standin("5.1.2"))
    assert r.rc == 0, r.output
    assert "Configuration file" not in r.output, r.output
    added = product.shipped_models(c) - before_shipped
    assert added, "the 5.1.2 stand-in adds no manifest?"

    seen = product.wait_for(lambda: product.answers(c) and added <= product.listed_models(c), 60)
    assert seen, f"{added} not listed by /hailo/v1/list: {product.listed_models(c)}"
    assert product.listed_models(c) == product.shipped_models(c)
    for name in added:
        m, tag = name.split(":")
        assert c.exists(f"{product.MANIFESTS}/{m}/{tag}/manifest.json")

    assert c.read_file(product.JSON) == before_json, "our rendered JSON was replaced"
    assert product.rendered_json(c) == product.SEED
    listing = c.exec(["dpkg-divert", "--list", product.JSON]).stdout
    assert f"to {product.JSON_DISTRIB} by {product.PACKAGE}" in listing, listing
    upstream = product.deb_file(debs.standin("5.1.2"), product.JSON)
    assert c.exec(["sha256sum", product.JSON_DISTRIB]).stdout.split()[0] == product.sha256(upstream)
    assert product.is_active(c) == "active"
