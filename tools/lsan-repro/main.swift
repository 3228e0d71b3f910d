// Standalone reproductions of the toolchain leaks that tools/lsan-suppressions.txt suppresses:
// no BNSpec code, only Foundation. Built and run by `tools/sanitizers.sh repro`
// (swiftc -sanitize=address); each mode must report its leak, with the stack the
// suppression names.
//   lsan-repro empty-file | process-run | readability-handler
import Foundation

final class Echo: @unchecked Sendable {
    let process = Process()
    let input = Pipe(), output = Pipe(), errors = Pipe()
    let cond = NSCondition()
    var got = 0

    init() throws {
        process.executableURL = URL(fileURLWithPath: "/bin/cat")
        process.standardInput = input; process.standardOutput = output; process.standardError = errors
        errors.fileHandleForReading.readabilityHandler = { h in if h.availableData.isEmpty { h.readabilityHandler = nil } }
        output.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self else { return }
            self.cond.lock()
            if d.isEmpty { h.readabilityHandler = nil } else { self.got += d.count }
            self.cond.broadcast(); self.cond.unlock()
        }
        try process.run()
    }

    func roundTripAndStop() {
        input.fileHandleForWriting.write(Data("hello\n".utf8))
        cond.lock(); while got == 0 { cond.wait() }; cond.unlock()
        try? input.fileHandleForWriting.close()
        while process.isRunning { usleep(10_000) }
        output.fileHandleForReading.readabilityHandler = nil
        errors.fileHandleForReading.readabilityHandler = nil
    }
}

let mode = CommandLine.arguments.dropFirst().first ?? ""
switch mode {
case "empty-file":
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("lsan-repro-empty-\(getpid())")
    FileManager.default.createFile(atPath: path.path, contents: Data())
    for _ in 0..<3 { precondition((try? Data(contentsOf: path))?.isEmpty == true) }
    try? FileManager.default.removeItem(at: path)
case "process-run":
    for _ in 0..<3 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try? p.run(); p.waitUntilExit()
    }
case "readability-handler":
    for _ in 0..<3 { (try? Echo())?.roundTripAndStop() }
default:
    FileHandle.standardError.write(Data("usage: lsan-repro empty-file | process-run | readability-handler\n".utf8))
    exit(2)
}
