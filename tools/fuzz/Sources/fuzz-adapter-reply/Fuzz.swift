import BNAudit
import Foundation
import FuzzSupport

/// Adapter reply lines.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? AdapterClient.decodeReply(String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self), expectedID: "case-1")
    return 0
}

@_cdecl("fuzz_adapter_reply_main")
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runLibFuzzer(argc, argv, fuzz) }
