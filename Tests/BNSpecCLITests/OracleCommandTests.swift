import BNAudit
import BNCore
import BNGolden
import Foundation
import Testing

/// `bnspec oracle` (spec §7): the committed cases are proved correctly rounded; in a copy whose
/// manifest was re-hashed after one element was moved by an ulp (its SHA-256 check passes), that
/// element is named with the correctly rounded value, and the repro line reruns exactly that case.
@Suite struct OracleCommandTests {
    static let ids = ["train.normal.2x3x1x1.NCHW.f32.pytorch.eps1e-05.m0.1",
                      "backward-train.normal.2x3x1x1.NCHW.f32.pytorch.eps1e-05.m0.1"]

    @Test func oracleProvesTheGoldenAndNamesAnElementOneUlpOff() throws {
        guard CLI.isBuilt() else { return }
        let ok = try CLI.run(["oracle"] + Self.ids.flatMap { ["--case", $0] })
        #expect(ok.status == 0 && ok.out.contains("golden oracle: 2 cases,") && ok.out.hasSuffix(" 0 failures\n"), "\(ok.out)\(ok.err)")

        let dir = try CLI.scratch("oracle")
        defer { try? FileManager.default.removeItem(at: dir) }
        var files: [String: Data] = [:]
        for id in Self.ids {
            for name in try FileManager.default.contentsOfDirectory(atPath: CLI.golden.appendingPathComponent(id).path) {
                files["\(id)/\(name)"] = try Data(contentsOf: CLI.golden.appendingPathComponent("\(id)/\(name)"))
            }
        }
        var y = try NPYArray.read(CLI.golden.appendingPathComponent("\(Self.ids[0])/expected_y.npy"))
        let right = y.values[4]
        y.values[4] = right.nextUp
        files["\(Self.ids[0])/expected_y.npy"] = try y.encoded()
        for (path, data) in files {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent(path).deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: dir.appendingPathComponent(path))
        }
        let manifest: [String: Any] = ["format": Manifest.formatVersion, "suite": "default", "generator": "a re-hashed copy",
                                       "cases": Self.ids, "files": files.mapValues { SHA256.hex($0) }]
        try JSONSerialization.data(withJSONObject: manifest).write(to: dir.appendingPathComponent(Manifest.fileName))

        let bad = try CLI.run(["oracle", "--golden", dir.path, "--threads", "2"])
        #expect(bad.status == 1, "\(bad.out)\(bad.err)")
        let fail = "FAIL \(Self.ids[0]) y[4]: golden \(right.nextUp), oracle \(right) (nearest to the exact value)"
        let repro = "repro: bnspec oracle --case \(Self.ids[0]) --golden \(dir.path)"
        #expect(bad.out.split(separator: "\n").map(String.init).filter { $0.hasPrefix("FAIL") || $0.hasPrefix("repro") } == [fail, repro], "\(bad.out)")
        #expect(bad.out.contains("golden oracle: 2 cases,") && bad.out.hasSuffix(" 1 failures\n"))
        #expect(bad.err.contains("bnspec: warning:"), "a folder that is not this release's suite is reported: \(bad.err)")
        let rerun = try CLI.run(Array(repro.dropFirst("repro: bnspec ".count).split(separator: " ").map(String.init)))
        #expect(rerun.status == 1 && rerun.out.contains("golden oracle: 1 cases,") && rerun.out.contains(fail), "\(rerun.out)")
        let usage = try CLI.run(["oracle", "--threads", "0"])
        #expect(usage.status == 64 && usage.errLines.count == 1 && BNError.isErrorLine(usage.err) && usage.err.hasPrefix("bnspec: error: --threads must be in 1…256"), "\(usage.err)")
    }
}
