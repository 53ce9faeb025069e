"""Allow ``python3 -m hailo_ollama_service`` from the source tree."""

import sys

from hailo_ollama_service.cli import main

sys.exit(main())
