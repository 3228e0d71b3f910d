// swift-tools-version:6.1
// libFuzzer targets for BNSpec's parsers. Built and run by tools/fuzz.sh:
//   swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
import PackageDescription

let targets = ["fuzz-npy", "fuzz-catalog", "fuzz-json", "fuzz-adapter-reply"]
let package = Package(
    name: "BNSpecFuzz",
    products: targets.map { .executable(name: $0, targets: [$0]) },
    dependencies: [.package(name: "BNSpec", path: "../..")],
    targets: [.target(name: "FuzzSupport")] + targets.map {
        .executableTarget(name: $0, dependencies: ["FuzzSupport", .product(name: "BNGolden", package: "BNSpec"),
                                                   .product(name: "BNAudit", package: "BNSpec")])
    }
)
