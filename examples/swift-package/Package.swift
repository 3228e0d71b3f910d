// swift-tools-version:6.1
//
// A user's package that audits its batch normalization with BNSpec in its own tests
// (README "Use BNSpec from Swift"). In your package, depend on BNSpec by version:
//     .package(url: "https://…/BNSpec.git", from: "<version>")
// here it is this checkout, by path; tools/check_swiftpm_dependency.sh builds and tests this
// same package against a tagged clone of the checkout, by version.
import PackageDescription

let package = Package(
    name: "MyBatchNorm",
    dependencies: [
        .package(name: "BNSpec", path: "../.."),
    ],
    targets: [
        // The library under test knows nothing of BNSpec.
        .target(name: "MyBatchNorm"),
        // The audit: one Swift Testing test per golden case (BNSpec's audit product only; no GSL).
        .testTarget(name: "MyBatchNormTests", dependencies: ["MyBatchNorm", .product(name: "BNAudit", package: "BNSpec")]),
    ]
)
