#!/usr/bin/env bash
# BNSpec as a SwiftPM dependency by version, as a user gets it (CI step; README "Use BNSpec from
# Swift"). Clones this checkout's HEAD into a temporary folder, tags it 0.0.0-check, copies the
# example package examples/swift-package there with its path dependency replaced by
#     .package(url: "file://<clone>", from: "0.0.0-check")
# and, on a machine where GNU GSL's development files are hidden (below), builds it and runs its
# tests:
#   - the honest kernel passes one Swift Testing test per golden case;
#   - the one-pass-variance kernel fails, naming "variance computed in one pass" with repro lines
#     (both suites in one `swift test`);
#   - the first repro line reruns exactly that one case, which fails again;
#   - the build compiled none of BNSpec's GSL users (BNReferenceChecks, bnspec) and mentions no GSL.
#
# Hiding GSL: the build runs in a private mount namespace (unshare --mount; needs root or user
# namespaces) in which every file of Debian's libgsl-dev is hidden: an empty tmpfs over
# /usr/include/gsl, the pkg-config folder remounted without gsl.pc, /dev/null over the libraries
# and gsl-config. Before building, the script checks that pkg-config no longer finds gsl and that
# BNSpec's own GSL module (Sources/CGSL/shim.h) no longer compiles there: the control that the
# hiding works. Nothing changes outside the namespace. --gsl-visible skips the hiding (and says so).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
hide=1
[ "${1:-}" = "--gsl-visible" ] && hide=0
die() { echo "check_swiftpm_dependency: error: $*" >&2; exit 1; }
start=$SECONDS

work="$(mktemp -d -t bnspec-dependency.XXXXXX)"
trap 'rm -rf "$work"' EXIT
git -C "$root" diff --quiet HEAD -- Sources Package.swift examples/swift-package golden spec \
    || echo "check_swiftpm_dependency: note: uncommitted changes are not tested (the clone is of HEAD $(git -C "$root" rev-parse --short HEAD))" >&2
git clone -q "$root" "$work/BNSpec"
git -C "$work/BNSpec" tag -f 0.0.0-check >/dev/null
cp -R "$work/BNSpec/examples/swift-package" "$work/MyBatchNorm"
dep='.package(name: "BNSpec", path: "../..")'
grep -qF "$dep" "$work/MyBatchNorm/Package.swift" || die "examples/swift-package/Package.swift no longer holds $dep"
python3 - "$work/MyBatchNorm/Package.swift" "$dep" ".package(url: \"file://$work/BNSpec\", from: \"0.0.0-check\")" <<'PY'
import sys
path, old, new = sys.argv[1:]
text = open(path).read()
open(path, "w").write(text.replace(old, new))
PY
grep -q 'from: "0.0.0-check"' "$work/MyBatchNorm/Package.swift" || die "could not rewrite the dependency"
cases="$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["cases"]))' "$root/golden/manifest.json")"

# Runs in the namespace (or directly with --gsl-visible).
cat > "$work/inner.sh" <<'INNER'
set -euo pipefail
work="$1"; hide="$2"; cases="$3"
die() { echo "check_swiftpm_dependency: error: $*" >&2; exit 1; }
if [ "$hide" = 1 ] && dpkg -s libgsl-dev >/dev/null 2>&1; then
    mkdir -p "$work/empty" "$work/pkgconfig"
    while read -r f; do
        case "$f" in
            */include/gsl) mount -t tmpfs -o ro tmpfs "$f" ;;
            */pkgconfig/gsl.pc)
                d="$(dirname "$f")"; cp -a "$d/." "$work/pkgconfig/"; rm -f "$work/pkgconfig/gsl.pc"
                mount --bind "$work/pkgconfig" "$d" ;;
            */lib*/libgsl*|*/bin/gsl-config) [ -e "$f" ] && mount --bind /dev/null "$f" ;;
        esac
    done < <(dpkg -L libgsl-dev)
    echo "check_swiftpm_dependency: libgsl-dev hidden in this namespace (headers, gsl.pc, libraries, gsl-config)"
elif [ "$hide" = 1 ]; then
    echo "check_swiftpm_dependency: libgsl-dev is not installed here: nothing to hide"
else
    echo "check_swiftpm_dependency: note: --gsl-visible: GSL is not hidden, so its absence is not checked"
fi
if [ "$hide" = 1 ]; then
    ! pkg-config --exists gsl 2>/dev/null || die "pkg-config still finds gsl"
    ! cc -fsyntax-only -x c "$work/BNSpec/Sources/CGSL/shim.h" 2>/dev/null || die "GSL's headers still compile (the hiding failed)"
    echo "check_swiftpm_dependency: control: pkg-config finds no gsl and BNSpec's CGSL module (Sources/CGSL/shim.h) does not compile"
fi
cd "$work/MyBatchNorm"
swift build --product MyBatchNormPackageTests -v > "$work/build.log" 2>&1 || { tail -n 40 "$work/build.log"; die "the dependent package does not build"; }
grep 'Working copy of .*BNSpec resolved at 0.0.0-check' "$work/build.log" || die "BNSpec was not resolved by version"
if grep -E -- '-module-name (BNReferenceChecks|bnspec) |CGSL|-lgsl' "$work/build.log" | head -n 3 | grep -q .; then
    die "the build compiled or linked a GSL user (see above)"
fi
if sed "s|$work||g" "$work/build.log" | grep -qi gsl; then
    sed "s|$work||g" "$work/build.log" | grep -i gsl | head -n 3; die "the build log mentions GSL"
fi
echo "check_swiftpm_dependency: built; no BNReferenceChecks, bnspec, CGSL or -lgsl in the build log"

# Both suites in one run (Swift Testing runs them side by side): the honest one must pass, the
# one-pass one fail; the run's status is the buggy suite's.
set +e
swift test --skip-build > "$work/both.txt" 2>&1
rc=$?
set -e
grep -q "Suite MyBatchNormAudit passed" "$work/both.txt" && grep -q "goldenCase(_:) with $cases test cases passed" "$work/both.txt" \
    || { grep -v 'started\.$' "$work/both.txt" | grep -v '^ *↳\|^ *repro:\|recorded an issue' | tail -n 30; die "the honest kernel's audit must pass with $cases test cases"; }
grep "goldenCase(_:) with" "$work/both.txt"
[ "$rc" -ne 0 ] && grep -q "Suite OnePassBatchNormAudit failed" "$work/both.txt" && grep -q '\[variance computed in one pass' "$work/both.txt" \
    && grep -q '^ *repro: BNSPEC_CASE=.* --filter OnePassBatchNormAudit' "$work/both.txt" \
    || { grep -v 'started\.$' "$work/both.txt" | tail -n 20; die "the buggy kernel must fail (was exit $rc) naming its cause with a repro line"; }
grep -m 2 -A 1 '^↳ failed ' "$work/both.txt"
repro="$(grep -m 1 -o 'repro: BNSPEC_CASE=.* --filter OnePassBatchNormAudit' "$work/both.txt" | sed 's/^repro: //')"
id="${repro#BNSPEC_CASE=}"; id="${id%% *}"
set +e
BNSPEC_CASE="$id" swift test --skip-build --filter OnePassBatchNormAudit > "$work/repro.txt" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] && grep -q "goldenCase(_:) with 1 test case failed" "$work/repro.txt" && grep -q "$id" "$work/repro.txt" \
    || { grep -v 'started\.$' "$work/repro.txt" | tail -n 10; die "the repro line did not rerun exactly case $id"; }
echo "check_swiftpm_dependency: the repro line reran exactly $id (failed again)"
INNER

if [ "$hide" = 1 ] && dpkg -s libgsl-dev >/dev/null 2>&1; then
    unshare --mount --propagation private true 2>/dev/null \
        || die "cannot make a private mount namespace to hide GSL (unshare --mount needs root or user namespaces); --gsl-visible skips that proof"
    unshare --mount --propagation private bash "$work/inner.sh" "$work" "$hide" "$cases"
else
    bash "$work/inner.sh" "$work" "$hide" "$cases"
fi
echo "check_swiftpm_dependency: BNSpec resolves by version, builds without GSL, and audits in process ($((SECONDS - start)) s)"
