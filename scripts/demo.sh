#!/usr/bin/env bash
# The demo: simulated citizens through the real kiosk flow into a real outbox, then its statistics.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
workdir=${BORNE_DEMO_DIR:-$(mktemp -d -t borne-demo.XXXXXX)}
mkdir -p "$workdir"
cat > "$workdir/borne.toml" <<TOML
[device]
site_id = "fs-demo-01"
device_id = "borne-demo-01"
department = "23"

[outbox]
path = "$workdir/outbox.db"
TOML
echo "demo: settings and outbox in $workdir"
.venv/bin/borne simulate --config "$workdir/borne.toml" --records 200 --seed 1
echo
.venv/bin/borne outbox stats --config "$workdir/borne.toml"
