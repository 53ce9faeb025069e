"""The service user's side of the boundary, run inside the server's sandbox:
the unit's main process (``serve``), the model tree and its manifest mirror,
the warm-up and the keep-warm load. Never imports ``root``."""
