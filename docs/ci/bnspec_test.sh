#!/usr/bin/env bash
# The test of docs/ci/BUILD.bazel: audits this shard (bnspec reads Bazel's TEST_TOTAL_SHARDS and
# TEST_SHARD_INDEX and touches TEST_SHARD_STATUS_FILE) and leaves Bazel its JUnit (XML_OUTPUT_FILE)
# and the JSON report for `bnspec merge` (TEST_UNDECLARED_OUTPUTS_DIR).
#   BNSPEC (default: bnspec on PATH), BNSPEC_ADAPTER, BNSPEC_PROFILE (default pytorch),
#   BNSPEC_AUDIT_ARGS: more audit options, split on spaces, not globbed (e.g. --match *NHWC*).
# Exit status: 0 passed, 1 a case failed, 2 could not run, 64 usage — Bazel fails the shard unless 0.
set -euo pipefail
set -f
out="${TEST_UNDECLARED_OUTPUTS_DIR:-.}/audit-shard-$(( ${TEST_SHARD_INDEX:-0} + 1 ))-of-${TEST_TOTAL_SHARDS:-1}.json"
# shellcheck disable=SC2086
exec "${BNSPEC:-bnspec}" audit --adapter "$BNSPEC_ADAPTER" --profile "${BNSPEC_PROFILE:-pytorch}" \
  --json "$out" --junit "${XML_OUTPUT_FILE:-audit.xml}" ${BNSPEC_AUDIT_ARGS:-}
