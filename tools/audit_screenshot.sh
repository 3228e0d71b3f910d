#!/usr/bin/env bash
# Renders an audit's HTML report to PNG with headless Chromium, when installed (else does nothing).
#   tools/audit_screenshot.sh DIR      # DIR/audit.html → DIR/audit.png
set -euo pipefail
dir="$(cd "$1" && pwd)"
for c in chromium chromium-browser; do
  if command -v "$c" > /dev/null; then
    "$c" --headless --no-sandbox --disable-gpu --window-size=1200,1800 --screenshot="$dir/audit.png" "file://$dir/audit.html" \
      > /dev/null 2>&1 || true
    break
  fi
done
