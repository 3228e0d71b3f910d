import BNGolden
import Foundation
import FuzzSupport

/// Catalog parser (and the case builder behind it).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? Catalog.parse(String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self), source: "fuzz")
    return 0
}

@_cdecl("fuzz_catalog_main")
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runLibFuzzer(argc, argv, fuzz) }
