"""Root's side of the boundary: the render of root-owned files, the apply
loop that try-restarts the server, and the metrics publisher. Never reads
trusted input from the service user's tree and never imports ``user``."""
