"""Every fixed name of the service and every path it uses, relative to the root.

This module imports nothing, not even ``os``: the commands that run at every
service start (``entry``) read these names, and a constant must never cost
an import or pull a layer above it in. Paths are relative (no leading
``/``) so that ``config.paths`` and ``stamp`` can join them with a scratch
root in tests; ``config.paths.make_paths`` is the one place that does.
"""

# The units and the user
UNIT = "hailo-ollama.service"
KEEPWARM_TIMER = "hailo-ollama-keepwarm.timer"
ACCESS_UNIT = "hailo-ollama-access.service"
ACCESS_USER = "hailo-ollama-access"
SERVICE_USER = "hailo-ollama"
DEBCONF_PACKAGE = "hailo-ollama-service"
# The README and the Pi owner's pages (docs/*.md), as the package installs them.
DOC_DIR = "/usr/share/doc/hailo-ollama-service"
DOC_PAGES = ("details", "security", "fleet", "doctor", "figures", "decisions")

# The kiosk's model allowlist, from root's environment file to serve's mirror
MODELS_ENV = "HAILO_OLLAMA_SERVICE_MODELS"

# Upstream's server and what it ships
SERVER = "/usr/bin/hailo-ollama"
UPSTREAM_MANIFESTS_REL = "usr/share/hailo-ollama/models/manifests"

# The settings (the conffile and its layers)
CONFFILE_REL = "etc/hailo/hailo-ollama.yaml"
LAYER_DIR_REL = "etc/hailo/hailo-ollama.d"
DEBCONF_LAYER_NAME = "00-debconf.yaml"

# Root's rendered outputs
UPSTREAM_JSON_REL = "etc/xdg/hailo-ollama/hailo-ollama.json"
ENV_FILE_REL = "run/hailo-ollama/hailo-ollama.env"
DROPIN_REL = "etc/systemd/system/hailo-ollama.service.d/50-hailo-ollama-service.conf"
LOCK_FILE_REL = "run/hailo-ollama/render.lock"

# Root's bookkeeping (root writes, anyone reads)
BOOK_REL = "var/lib/hailo-ollama-service"
BOOK_NAME = "state.json"
STAMP_NAME = "render.stamp"
SERVED_NAME = "served-address"
KEEP_FLAG_NAME = "keep-loaded"
KEYS_NAME = "api-keys.json"

# The access front (HAProxy from the archive): root writes, its user reads
HAPROXY_REL = "usr/sbin/haproxy"
ACCESS_DIR_REL = "var/lib/hailo-ollama-service/access"
SNAKEOIL_CERT_REL = "etc/ssl/certs/ssl-cert-snakeoil.pem"
SNAKEOIL_KEY_REL = "etc/ssl/private/ssl-cert-snakeoil.key"

# The service user's tree (hostile to root)
STATE_REL = "var/lib/hailo-ollama"
MIRROR_RECORD_NAME = "mirror-state.json"
SYNC_STAMP_NAME = "sync-stamp"
LEGACY_STATE_NAME = "render-state.json"
KEEP_STATE_NAME = "keep-warm-state.json"

# The stamps' first lines
STAMP_HEADER = "hailo-ollama-service render stamp 1"
SYNC_HEADER = "hailo-ollama-service sync stamp 1"

# Metrics: node_exporter's textfile directory (Debian's default) and where
# the metrics unit's unprivileged step leaves its file (its RuntimeDirectory=)
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
TEXTFILE_NAME = "hailo-ollama.prom"
METRICS_OUTPUT = "/run/hailo-ollama-metrics/hailo-ollama.prom"
