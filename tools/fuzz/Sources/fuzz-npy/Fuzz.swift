import BNGolden
import Foundation

/// NPY reader: any bytes must give an array or a BNError, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    _ = try? NPYArray.decode(bytes, name: "fuzz.npy")
    _ = try? NPYArray.decode(bytes, name: "fuzz.npy", bfloat16: true)
    return 0
}

// SwiftPM links an executable's entry point as fuzz_npy_main; hand it to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("fuzz_npy_main")
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc, v = argv
    return runDriver(&c, &v, fuzz)
}
