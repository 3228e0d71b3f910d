import BNGolden
import Foundation
import FuzzSupport

/// Case JSON and manifest JSON through the loaders' own decoders (decoding, validation, path
/// checks), then what a loaded case is used for: its shape, running-update rule and family.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    if let spec = try? GoldenStore.decodeCase(bytes, path: "fuzz/case.json") {
        _ = try? spec.shapeValue()
        _ = try? spec.rule()
        _ = spec.family
    }
    _ = try? GoldenStore.decodeManifest(bytes, path: "fuzz/manifest.json")
    return 0
}

@_cdecl("fuzz_json_main")
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runLibFuzzer(argc, argv, fuzz) }
