"""setuptools metadata of hailo-ollama-service (built by dh-python/pybuild)."""

import re
from pathlib import Path

from setuptools import find_packages, setup

VERSION = re.search(r'__version__ = "([^"]+)"',
                    Path(__file__).with_name("hailo_ollama_service").joinpath("__init__.py").read_text()).group(1)

setup(
    name="hailo-ollama-service",
    version=VERSION,
    description="Run Hailo's hailo-ollama as a managed, Ollama-compatible systemd service",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["hailo_ollama_service", "hailo_ollama_service.*"]),
    install_requires=["PyYAML"],
    extras_require={"test": ["pytest"]},
    # A plain script, not a console_scripts entry point: its "python3 -I"
    # shebang keeps root's runs isolated (see the script), and it starts
    # without scanning the installed distributions.
    scripts=["bin/hailo-ollama-service"],
)
