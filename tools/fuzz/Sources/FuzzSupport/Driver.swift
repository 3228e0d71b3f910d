/// libFuzzer's entry for every target of this package.
///
/// SwiftPM links an executable target's entry point as `<target>_main` (e.g. `fuzz_npy_main`);
/// each target defines that symbol with `@_cdecl` and hands its test function to
/// ``runLibFuzzer(_:_:_:)``, which runs libFuzzer's driver (flags such as `-runs=` and
/// `-max_len=` come from the command line).
public typealias FuzzTest = @convention(c) (UnsafePointer<UInt8>, Int) -> CInt

@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ callback: FuzzTest) -> CInt

public func runLibFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ test: FuzzTest) -> CInt {
    var c = argc, v = argv
    return runDriver(&c, &v, test)
}
