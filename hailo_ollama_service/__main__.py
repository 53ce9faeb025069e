"""Allow ``python3 -m hailo_ollama_service`` (the source tree, tests, root's
setpriv'd sync): the same fast path and command line as the installed script."""

import sys

from hailo_ollama_service import fastpath

code = fastpath.main(sys.argv[1:])
if code is None:
    from hailo_ollama_service.cli import main

    code = main()
sys.exit(code)
