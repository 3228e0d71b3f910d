# Sourced by tools/audit_frameworks.sh and tools/audit_sync.sh: their arguments and the audit loop.
# The caller sets `tool` (its name, for messages), `only` (the default engines), `prefix` (reports go
# to docs/audits/<prefix><engine>/), the associative arrays `adapter` and `profile` (engine → adapter
# command, audited profile), the arrays `audit_args` and `fingerprint_args` (extra options), then
# calls `audit_engines "$@"` from the repository root.
#
#   [--python PY] [--only a,b,...]   PY defaults to the virtualenv of tools/setup_frameworks.sh
#
# Per engine: audit.json, audit.html, audit.junit.xml, audit.txt, fingerprint.json (written
# atomically) and, with headless Chromium, audit.png; then docs/audits/README.md.
audit_engines() {
  local py="" n out bnspec names
  while [ $# -gt 0 ]; do
    case "$1" in
      --python) py="$2"; shift 2 ;;
      --only) only="$2"; shift 2 ;;
      *) echo "$tool: error: unknown argument '$1'" >&2; exit 2 ;;
    esac
  done
  IFS=',' read -ra names <<< "$only"
  for n in "${names[@]}"; do
    [ -n "${adapter[$n]:-}" ] || { echo "$tool: error: unknown engine '$n'" >&2; exit 2; }
  done
  [ -n "$py" ] || py="$(tools/setup_frameworks.sh)"
  swift build -c release --product bnspec >&2
  bnspec="$PWD/.build/release/bnspec"
  for n in "${names[@]}"; do
    out="docs/audits/$prefix$n"; mkdir -p "$out"
    echo "== $prefix$n (profile ${profile[$n]})" >&2
    "$bnspec" audit --adapter "$py ${adapter[$n]}" --profile "${profile[$n]}" "${audit_args[@]}" \
      --json "$out/audit.json" --html "$out/audit.html" --junit "$out/audit.junit.xml" > "$out/audit.txt" || true
    "$bnspec" fingerprint --adapter "$py ${adapter[$n]}" "${fingerprint_args[@]}" --json > "$out/fingerprint.json.tmp" \
      && mv "$out/fingerprint.json.tmp" "$out/fingerprint.json"
    bash tools/audit_screenshot.sh "$out"
  done
  python3 tools/audit_summary.py > docs/audits/README.md
  echo "wrote docs/audits/$prefix*" >&2
}
