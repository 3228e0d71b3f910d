// swift-tools-version:6.1
//
// BNSpec — the trusted reference for Batch Normalization numerics.
//
// Data flows one way through the targets:
//   BNCore (shapes, layouts, profiles)
//     → BNReference (Double reference, exact oracle)
//     → BNGolden (case catalog, generator, NPY/JSON I/O, golden/)
//     → BNKernels (Float kernels under test) → BNCalibration (honest and buggy calibration kernels)
//     → BNAudit (judge, verification, audit, diagnosis, reports)
//     → BNBench (timing of the kernels against memcpy)
//     BNLibraryHost: a C-ABI kernel library (CBNKernelABI) served as an audit adapter
//     → bnspec (CLI, thin)
// BNReferenceChecks (the reference against GNU GSL and NIST StRD; golden/ against the exact oracle) is the only user of CGSL.
import PackageDescription

// No target uses compiler flags (a package with unsafe flags cannot be a versioned
// dependency): the kernels' memory passes (CBNKernels) are compiled for several
// instruction sets in C, with per-function target attributes, and chosen at run time
// (spec/SPEC.md §9.4).

let package = Package(
    name: "BNSpec",
    products: [
        .executable(name: "bnspec", targets: ["bnspec"]),
        // For packages that depend on BNSpec (README "Use BNSpec from Swift"): each library product
        // holds its module and the modules its public API names (BNCore's shapes, layouts, dtypes and
        // profiles, …). None holds CGSL: GSL is needed only to build the CLI and the tests.
        .library(name: "BNReference", targets: ["BNCore", "BNReference"]),
        .library(name: "BNGolden", targets: ["BNCore", "BNReference", "BNGolden"]),
        .library(name: "BNKernels", targets: ["BNCore", "BNKernels"]),
        .library(name: "BNCalibration", targets: ["BNCore", "BNKernels", "BNCalibration"]),
        .library(name: "BNAudit", targets: ["BNCore", "BNReference", "BNGolden", "BNKernels", "BNAudit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics.git", from: "1.0.0"),
        .package(url: "https://github.com/attaswift/BigInt.git", from: "6.0.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.0"),
    ],
    targets: [
        .systemLibrary(name: "CGSL", pkgConfig: "gsl", providers: [.apt(["libgsl-dev"])]),
        .target(name: "BNCore"),
        .target(
            name: "BNReference",
            dependencies: ["BNCore", .product(name: "RealModule", package: "swift-numerics"), "BigInt"]),
        .target(name: "CBNKernels"),
        .target(name: "CBNFiles"),
        // SHA-256 for the manifest hashes and output digests (SHA extensions where the CPU has them).
        .target(name: "CBNDigest"),
        // The C ABI of a kernel library under audit (include/bnspec/bnspec_kernel.h) and its loader.
        .target(name: "CBNKernelABI", linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "CBNProcess"),
        .target(name: "BNKernels", dependencies: ["BNCore", "CBNKernels"]),
        .target(
            name: "BNGolden",
            dependencies: ["BNCore", "BNReference", "CBNFiles", "CBNDigest"],
            resources: [.copy("Resources/nist-strd")]),
        .target(name: "BNLibraryHost", dependencies: ["BNCore", "BNGolden", "CBNKernelABI"]),
        .target(name: "BNBench", dependencies: ["BNCore", "BNKernels"]),
        .target(name: "BNCalibration", dependencies: ["BNCore", "BNKernels"]),
        .target(name: "BNAudit", dependencies: ["BNCore", "BNReference", "BNGolden", "BNKernels", "BNCalibration", "CBNProcess"]),
        .target(name: "BNReferenceChecks", dependencies: ["BNCore", "BNReference", "BNGolden", "CGSL", "BigInt"]),
        .executableTarget(
            name: "bnspec",
            dependencies: ["BNAudit", "BNGolden", "BNBench", "BNReferenceChecks", "BNLibraryHost",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(
            name: "BNReferenceTests",
            dependencies: ["BNReference", "BNGolden", "BNReferenceChecks", "BigInt",
                           .product(name: "PropertyBased", package: "swift-property-based")]),
        .testTarget(
            name: "BNLawsTests",
            dependencies: ["BNCore", "BNReference", "BNGolden", "BNKernels", "BNAudit",
                           .product(name: "PropertyBased", package: "swift-property-based")]),
        .testTarget(name: "BNAuditTests", dependencies: ["BNAudit", "BNCore", "BNGolden", "BNKernels", "BNCalibration"]),
        .testTarget(name: "BNLibraryHostTests", dependencies: ["BNGolden"]),
        .testTarget(name: "BNKernelsTests", dependencies: ["BNKernels", "BNCore", "BNAudit"]),
        .testTarget(name: "BNBenchTests", dependencies: ["BNBench", "BNCore"]),
        .testTarget(name: "BNGoldenTests", dependencies: ["BNGolden", "BNAudit", "BNKernels", "BNCore"]),
        // The bnspec executable as CI runs it: exit codes, reports, progress, shards and merge, installs.
        .testTarget(name: "BNSpecCLITests", dependencies: ["BNGolden", "BNAudit", "BNCore"]),
    ]
)
