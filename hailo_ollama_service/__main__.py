"""``python3 -m hailo_ollama_service`` (the source tree, tests): the same
command line as the installed script."""

import sys

from hailo_ollama_service.entry import main

sys.exit(main())
