import BNAudit
import Foundation
import FuzzSupport

/// Adapter reply lines (with a timed-out and an answered case, so every id rule is reached), the
/// control-character escaping of what is shown, and the output-path confinement.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let line = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let r = try? AdapterClient.decodeReply(line, expectedID: "case-1", timedOut: ["case-0"], answered: ["case-2"]),
       case .outputs(let files) = r {
        _ = AdapterOutputs.confine(files, to: "/tmp")
    }
    _ = line.escapingControlCharacters()
    return 0
}

@_cdecl("fuzz_adapter_reply_main")
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt { runLibFuzzer(argc, argv, fuzz) }
