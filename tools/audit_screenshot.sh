#!/usr/bin/env bash
# Renders HTML reports to PNG with headless Chromium, to look at them as a reader will.
#   tools/audit_screenshot.sh DIR              # DIR/audit.html → DIR/audit.png
#   tools/audit_screenshot.sh FILE.html ...    # each FILE.html → FILE.png
#   tools/audit_screenshot.sh --install ...    # install Chromium from Debian first when it is missing
# Without Chromium (and without --install) it says so on stderr and exits 0: the reports themselves
# do not depend on it. SCREENSHOT_WIDTH and SCREENSHOT_HEIGHT set the window (default 1200 × 2400).
set -euo pipefail
install=0
if [ "${1:-}" = "--install" ]; then install=1; shift; fi
[ $# -gt 0 ] || { echo "usage: tools/audit_screenshot.sh [--install] DIR|FILE.html ..." >&2; exit 64; }
find_chromium() { for c in chromium chromium-browser google-chrome; do command -v "$c" && return 0; done; return 1; }
chromium="$(find_chromium || true)"
if [ -z "$chromium" ] && [ "$install" = 1 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get install -y chromium > /dev/null
  chromium="$(find_chromium || true)"
fi
if [ -z "$chromium" ]; then
  echo "audit_screenshot: no Chromium (apt-get install chromium, or pass --install); no PNG written" >&2
  exit 0
fi
for arg in "$@"; do
  if [ -d "$arg" ]; then html="$(cd "$arg" && pwd)/audit.html"; else html="$(cd "$(dirname "$arg")" && pwd)/$(basename "$arg")"; fi
  [ -f "$html" ] || { echo "audit_screenshot: error: $html: no such file" >&2; exit 2; }
  png="${html%.html}.png"
  "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size="${SCREENSHOT_WIDTH:-1200},${SCREENSHOT_HEIGHT:-2400}" --screenshot="$png" "file://$html" > /dev/null 2>&1 \
    || { echo "audit_screenshot: error: Chromium could not render $html" >&2; exit 2; }
  echo "$png"
done
