import BNCore
import CBNKernelABI
import Foundation

/// A kernel library loaded through the C ABI (`bnspec/bnspec_kernel.h`), checked at open.
final class KernelLibrary: @unchecked Sendable {
    let handle: OpaquePointer
    let path: String

    /// Opens and checks `path`. Throws a one-line ``BNError/file(path:reason:)`` naming what is
    /// wrong: not loadable, missing symbol, ABI version mismatch, supports table without entry points.
    init(path: String, symbolPrefix: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw BNError.file(path: path, reason: "no such library file")
        }
        // dlopen searches the library path for a name without a slash; a path is meant here.
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        self.path = path
        var message = [CChar](repeating: 0, count: 1024)
        guard let h = bnspec_host_open(absolute, symbolPrefix, &message, message.count) else {
            throw BNError.file(path: path, reason: Self.text(message))
        }
        handle = h
    }

    deinit { bnspec_host_release(handle) }

    /// A NUL-terminated C buffer as text.
    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The kernel's name and version, cut at 200 characters (a 2 MiB name had overrun the load
    /// check's line and read "crashed while loading (status 0)": an outside red team's).
    var name: String { String(String(cString: bnspec_host_name(handle)).prefix(200)) }
    var version: String { String(String(cString: bnspec_host_version(handle)).prefix(200)) }
    var keepsRunningStatistics: Bool { bnspec_host_features(handle) & UInt32(BNSPEC_FEATURE_RUNNING_STATISTICS) != 0 }
    var cumulativeAverage: Bool { bnspec_host_features(handle) & UInt32(BNSPEC_FEATURE_CUMULATIVE_AVERAGE) != 0 }

    func supports(_ op: Op, _ dtype: DType, _ layout: Layout) -> Bool {
        bnspec_host_supports(handle, op.code, Self.code(dtype), Self.code(layout)) != 0
    }

    func symbol(_ op: Op, _ dtype: DType) -> String { String(cString: bnspec_host_symbol(handle, op.code, Self.code(dtype))) }

    /// The four entry points of the ABI.
    enum Op: CaseIterable {
        case train, infer, backwardTrain, backwardInfer
        var code: Int32 {
            switch self {
            case .train: BNSPEC_OP_TRAIN
            case .infer: BNSPEC_OP_INFER
            case .backwardTrain: BNSPEC_OP_BACKWARD_TRAIN
            case .backwardInfer: BNSPEC_OP_BACKWARD_INFER
            }
        }
        /// The entry point's tensor arguments, in the order of bnspec_kernel.h.
        var arguments: [String] {
            switch self {
            case .train: ["x", "gamma", "beta", "running_mean", "running_var", "y", "batch_mean", "batch_var"]
            case .infer: ["x", "gamma", "beta", "mean", "var", "y"]
            case .backwardTrain: ["x", "dy", "gamma", "dx", "dgamma", "dbeta"]
            case .backwardInfer: ["x", "dy", "gamma", "mean", "var", "dx", "dgamma", "dbeta"]
            }
        }

        /// The adapter protocol's name.
        var name: String {
            switch self {
            case .train: "train"
            case .infer: "infer"
            case .backwardTrain: "backward-train"
            case .backwardInfer: "backward-infer"
            }
        }
    }

    static func code(_ d: DType) -> Int32 {
        switch d {
        case .f32: BNSPEC_DTYPE_F32
        case .f16: BNSPEC_DTYPE_F16
        case .bf16: BNSPEC_DTYPE_BF16
        case .f64: BNSPEC_DTYPE_F64
        }
    }

    static func code(_ l: Layout) -> Int32 {
        switch l {
        case .nchw: BNSPEC_LAYOUT_NCHW
        case .nhwc: BNSPEC_LAYOUT_NHWC
        case .nc: BNSPEC_LAYOUT_NC
        }
    }

    /// What a call returned: BNSPEC_OK, or a code with the kernel's message.
    struct Status {
        var code: Int32
        var message: String
    }

    /// Calls one entry point with the buffers in the order of bnspec_kernel.h; `nil` passes NULL.
    func call(_ op: Op, _ dtype: DType, problem: inout bnspec_problem, _ b: [HostBuffer?]) -> Status {
        var message = [CChar](repeating: 0, count: 1024)
        let p = b.map { $0?.pointer }
        let d = Self.code(dtype)
        let rc: Int32 = message.withUnsafeMutableBufferPointer { m in
            switch op {
            case .train:
                bnspec_host_train(handle, d, &problem, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], m.baseAddress, m.count)
            case .infer:
                bnspec_host_infer(handle, d, &problem, p[0], p[1], p[2], p[3], p[4], p[5], m.baseAddress, m.count)
            case .backwardTrain:
                bnspec_host_backward_train(handle, d, &problem, p[0], p[1], p[2], p[3], p[4], p[5], m.baseAddress, m.count)
            case .backwardInfer:
                bnspec_host_backward_infer(handle, d, &problem, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], m.baseAddress, m.count)
            }
        }
        message[message.count - 1] = 0
        let text = Self.text(message).split(separator: "\n").first.map(String.init) ?? ""
        return Status(code: rc, message: text)
    }
}
