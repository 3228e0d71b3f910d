import BNGolden
import Foundation

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

// SwiftPM links an executable's entry point as fuzz_json_main; hand it to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("fuzz_json_main")
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return runDriver(&c, &v, fuzz)
}
