"""The documentation (issue 22): a short README for the Pi owner, pages in
docs/ by reader, installed with the package, naming no stale version."""

from __future__ import annotations

import re
from pathlib import Path

from hailo_ollama_service.constants import DOC_PAGES

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"

# The headings of the README before it was split (one file of 1273 lines);
# each one is a heading of the README or of a docs page now, by the same
# name or by the one given in RENAMED.
OLD_HEADINGS = [
    "hailo-ollama-service", "For Pi owners", "Prerequisites", "Install", "Check it", "Change settings",
    "Models", "Use it from Ollama clients", "Logs", "Upgrade", "Remove", "Troubleshooting",
    "Watch a fleet with Prometheus", "Access: API keys, TLS and allowed networks (opt-in)", "Security",
    "Many Pis", "One Ollama URL for many Pis", "Upgrade the fleet one Pi at a time",
    "A model library on the LAN: from one Pi to forty", "For contributors", "Layout", "Test", "Build",
    "Figures", "Decisions",
]
# "For Pi owners" was the README's first half; the README is now that half.
RENAMED = {"For Pi owners": "hailo-ollama-service"}


def headings(path: Path) -> list[str]:
    """The Markdown headings of PATH (ATX style, outside code fences), without their #s."""
    found, fenced = [], False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)", line)):
            found.append(match.group(1).strip())
    return found


def slug(heading: str) -> str:
    """The anchor GitHub gives HEADING: lower case, punctuation dropped, spaces as '-'."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def documents() -> list[Path]:
    """What the version rule covers: every Markdown page of the tree (not the
    lint environment), the examples, and debian/ but its changelog."""
    found = [p for p in REPO.rglob("*.md") if not {".lint-env", ".git", "dist", "build"} & set(p.parts)]
    for folder in ("examples", "debian"):
        found += [p for p in (REPO / folder).rglob("*") if p.is_file() and p.name != "changelog"
                  and p.suffix not in (".po", ".pot")]
    return sorted(set(found))


def changelog_versions() -> list[str]:
    """Every version of debian/changelog, newest first."""
    return re.findall(r"^hailo-ollama-service \(([^)]+)\)", (REPO / "debian/changelog").read_text(), re.M)


def stale_versions(text: str, current: str, older: list[str], figures: bool) -> list[tuple[int, str]]:
    """(line number, version) for each version of OLDER that TEXT names,
    read as a whole version (not inside an address or another product's
    "name/1.4.0"). In the figures page a version right after the word
    "release" is a note of what that release measured, and allowed."""
    hits = []
    for number, line in enumerate(text.splitlines(), 1):
        for version in older:
            if version == current:
                continue
            for match in re.finditer(rf"(?<![0-9./]){re.escape(version)}(?!\.?[0-9])", line):
                if figures and re.search(r"\brelease\s+v?$", line[:match.start()], re.I):
                    continue
                hits.append((number, version))
    return hits


def test_the_readme_is_under_250_lines():
    assert len(README.read_text().splitlines()) < 250


def test_no_document_names_a_version_of_this_package_other_than_the_current_one():
    current, *older = changelog_versions()
    problems = []
    for path in documents():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, version in stale_versions(text, current, older, figures=path == DOCS / "figures.md"):
            problems.append(f"{path.relative_to(REPO)}:{number}: names {version} (current: {current})")
    assert not problems, "\n".join(problems)


def test_the_version_rule_flags_a_stale_package_name_and_spares_addresses_other_products_and_figures_notes():
    older = ["1.6.0", "1.2.0", "1.4.0", "1.1.0"]
    text = ("sudo apt install ./hailo-ollama-service_1.2.0_all.deb\n"
            "networks: 192.168.1.1.0/24 and 10.1.1.0\n"
            "Server: oatpp/1.4.0\n"
            "Release 1.2.0 took 0.3 s; the upgrade from release v1.1.0\n"
            "1.6.0 is the current one\n")
    assert stale_versions(text, "1.6.0", older, figures=False) == [(1, "1.2.0"), (4, "1.2.0"), (4, "1.1.0")]
    assert stale_versions(text, "1.6.0", older, figures=True) == [(1, "1.2.0")]


def test_every_heading_of_the_readme_before_the_split_is_a_heading_of_the_readme_or_a_docs_page():
    now = {heading for page in pages() for heading in headings(page)}
    missing = [old for old in OLD_HEADINGS if RENAMED.get(old, old) not in now]
    assert not missing, f"headings lost in the split: {missing}"


def test_every_relative_link_of_the_readme_and_docs_points_to_a_file_and_heading_that_exist():
    broken = []
    for page in pages():
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target}: no such file")
            elif anchor and file.suffix == ".md" and anchor not in {slug(h) for h in headings(file)}:
                broken.append(f"{page.name}: {target}: no such heading in {file.name}")
    assert not broken, "\n".join(broken)


def test_the_readme_links_every_docs_page():
    text = README.read_text()
    assert [p.stem for p in sorted(DOCS.glob("*.md")) if f"(docs/{p.name})" not in text] == []


def test_the_package_installs_the_readme_and_every_docs_page_but_the_contributors_one():
    docs = (REPO / "debian/hailo-ollama-service.docs").read_text().split()
    install = (REPO / "debian/hailo-ollama-service.install").read_text().splitlines()
    installed = sorted(line.split()[0] for line in install if line.startswith("docs/"))
    assert docs == ["README.md"]
    assert all(line.split()[1] == "usr/share/doc/hailo-ollama-service/docs/"
               for line in install if line.startswith("docs/"))
    assert installed == sorted(f"docs/{page}.md" for page in DOC_PAGES)
    assert sorted(p.stem for p in DOCS.glob("*.md")) == sorted([*DOC_PAGES, "contributing"])


def test_the_readme_commands_name_no_version_and_install_by_glob():
    text = README.read_text()
    assert "./hailo-ollama-service_*_all.deb" in text
    assert not re.search(r"hailo-ollama-service_[0-9]", text)
