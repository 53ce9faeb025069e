"""hailo-ollama-service: run Hailo's hailo-ollama as a managed systemd service.

The version below must equal the top entry of debian/changelog (a unit test
checks it); tools/build-deb rewrites both when it builds another version.
"""

__version__ = "1.6.1"
