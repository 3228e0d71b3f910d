/// The golden suite this build ships, pinned: the SHA-256 of the default suite's
/// `golden/manifest.json` as `bnspec generate` writes it from spec/catalog.txt (the manifest lists
/// every file's SHA-256, so this names every expected value and tolerance).
///
/// A golden folder is checked against its own manifest file by file; a folder whose files were
/// edited and whose manifest was re-hashed to match, or that was pruned of the cases an
/// implementation fails, passed every such check (an outside red team's, round I, 2026-12-05).
/// `bnspec audit` and `verify` compare the folder's manifest with this digest and say so when it is
/// not this release's suite (a suite generated from another catalog, or `--suite large`, is not).
/// `GoldenSuiteTests.goldenIsThisReleasesSuite` keeps it equal to the committed golden/.
public enum GoldenRelease {
    public static let manifestSHA256 = "d3570ba0e6d5a2b1ef516c2af31d2dbdcc12ee5f54d6b4b7cec546a01c412246"

    /// The one-line notice for a golden folder whose manifest digest is `sha`; nil for this
    /// release's default suite.
    public static func notice(_ sha: String) -> String? {
        sha == manifestSHA256 ? nil
            : "golden manifest SHA-256 \(sha.prefix(16))… is not this release's default suite (\(manifestSHA256.prefix(16))…): "
                + "its expected values and tolerances are taken as they are; `bnspec generate --check --out <golden>` recomputes them"
    }
}
