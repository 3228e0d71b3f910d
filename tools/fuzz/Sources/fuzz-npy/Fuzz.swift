import BNGolden
import Foundation
import FuzzSupport

/// NPY reader: any bytes must give an array or a BNError, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    _ = try? NPYArray.decode(bytes, name: "fuzz.npy")
    _ = try? NPYArray.decode(bytes, name: "fuzz.npy", bfloat16: true)
    return 0
}

@_cdecl("fuzz_npy_main")
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runLibFuzzer(argc, argv, fuzz) }
