"""tests/standin/hailo-ollama-library run on a loopback port, for tests.

Shared by the stand-in's own tests (standin_helpers.Library) and the unit tests
(unit_helpers.Library): HTTPS with a self-signed certificate issued for
another name (hailo-ollama-standin-library.invalid), serving the blobs of
the manifests it is given. Its request log is collected in ``lines``.
"""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

PROGRAM = Path(__file__).resolve().parent / "hailo-ollama-library"


class LibraryProcess:
    """The library started with ARGS (e.g. "--tamper", "--plain") for the
    blobs of MANIFESTS; raises RuntimeError when it does not start."""

    def __init__(self, *args: str, manifests: tuple[Path, ...]) -> None:
        argv = [str(PROGRAM), "--port", "0", *args]
        for directory in manifests:
            argv += ["--manifests", str(directory)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        first = self.proc.stdout.readline() if self.proc.stdout else ""
        match = re.match(r"listening on 127\.0\.0\.1:(\d+)", first)
        if not match:
            self.stop()
            raise RuntimeError(f"the stand-in library did not start: {first}")
        self.port = int(match.group(1))
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")),
                         daemon=True).start()

    def stop(self) -> None:
        """Terminate it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()
