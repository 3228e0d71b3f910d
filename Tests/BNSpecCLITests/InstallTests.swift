import BNCore
import BNGolden
import Foundation
import Testing

/// bnspec outside a checkout (issue 16): installed as the README says — the binary (and its
/// resource bundle) copied to `<prefix>/bin`, golden/ and spec/ to `<prefix>/share/bnspec` — and run
/// from a folder that is no checkout, it finds its data there; `BNSPEC_HOME`, `BNSPEC_GOLDEN` and
/// `--golden` take precedence, in that order reversed; with none of them it says what to do.
@Suite struct InstallTests {
    static let one = "train.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1"

    /// `<prefix>/bin/bnspec` + `<prefix>/share/bnspec/{golden,spec}` holding the cases `ids` (a
    /// golden folder written as `generate` writes it, so its manifest lists exactly them).
    func install(_ prefix: URL, ids: [String], share: Bool = true) throws -> String {
        let fm = FileManager.default
        let bin = prefix.appendingPathComponent("bin")
        try fm.createDirectory(at: bin, withIntermediateDirectories: true)
        try fm.copyItem(atPath: CLI.bnspec, toPath: bin.appendingPathComponent("bnspec").path)
        let resources = URL(fileURLWithPath: CLI.bnspec).deletingLastPathComponent().appendingPathComponent("BNSpec_BNGolden.resources")
        if fm.fileExists(atPath: resources.path) { try fm.copyItem(at: resources, to: bin.appendingPathComponent(resources.lastPathComponent)) }
        if share {
            let s = prefix.appendingPathComponent("share/bnspec")
            try fm.createDirectory(at: s.appendingPathComponent("spec"), withIntermediateDirectories: true)
            try fm.copyItem(at: CLI.root.appendingPathComponent("spec/catalog.txt"), to: s.appendingPathComponent("spec/catalog.txt"))
            let cases = try Catalog.load(CLI.root.appendingPathComponent("spec/catalog.txt")).cases[Catalog.defaultSuite]!.filter { ids.contains($0.id) }
            try GoldenStore.write(try Generator.suiteFiles(cases, suite: "installed"), to: s.appendingPathComponent("golden"), force: false)
        }
        return bin.appendingPathComponent("bnspec").path
    }

    @Test func installedBinaryFindsItsShareFolderOutsideACheckout() throws {
        guard CLI.isBuilt() else { return }
        let work = try CLI.scratch("install")
        defer { try? FileManager.default.removeItem(at: work) }
        let elsewhere = work.appendingPathComponent("elsewhere")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        #expect(Checkout.root(from: elsewhere) == nil, "the temporary folder is inside a checkout")
        let exe = try install(work.appendingPathComponent("prefix"), ids: [Self.one])

        // The share folder: verify and audit --list read its golden/, generate --check its spec/ too.
        let v = try CLI.run(["verify", "--implementation", "fused"], exe: exe, cwd: elsewhere)
        #expect(v.status == 0 && v.out.contains("verify: OK — 1 case × 1 implementation: 1 passed"), "\(v.out)\(v.err)")
        #expect(try CLI.run(["audit", "--list"], exe: exe, cwd: elsewhere).out == "\(Self.one)\n")
        let g = try CLI.run(["generate", "--check", "--case", Self.one], exe: exe, cwd: elsewhere)
        #expect(g.status == 0 && g.out.contains("share/bnspec/golden are identical"), "\(g.out)\(g.err)")

        // BNSPEC_HOME (a folder with golden/ and spec/: here the checkout), then BNSPEC_GOLDEN, then --golden.
        let all = try GoldenStore.manifest(CLI.golden).cases.count
        let home = try CLI.run(["verify", "--list"], exe: exe, cwd: elsewhere, env: ["BNSPEC_HOME": CLI.root.path])
        #expect(home.out.split(separator: "\n").count == all)
        let other = work.appendingPathComponent("other")
        _ = try install(other, ids: [Self.one, "infer.normal.4x3x5x5.NCHW.f32.pytorch.eps1e-05.m0.1"])
        let otherGolden = other.appendingPathComponent("share/bnspec/golden").path
        let viaGolden = try CLI.run(["verify", "--list"], exe: exe, cwd: elsewhere, env: ["BNSPEC_HOME": CLI.root.path, "BNSPEC_GOLDEN": otherGolden])
        #expect(viaGolden.out.split(separator: "\n").count == 2)
        let viaFlag = try CLI.run(["verify", "--list", "--golden", CLI.golden.path], exe: exe, cwd: elsewhere, env: ["BNSPEC_GOLDEN": otherGolden])
        #expect(viaFlag.out.split(separator: "\n").count == all)
        let wrong = try CLI.run(["verify", "--list"], exe: exe, cwd: elsewhere, env: ["BNSPEC_HOME": work.appendingPathComponent("nope").path])
        #expect(wrong.status == 2 && wrong.errLines.count == 1 && wrong.err.contains("BNSPEC_HOME names no folder"), "\(wrong.err)")
    }

    @Test func withoutDataItSaysWhereItLooked() throws {
        guard CLI.isBuilt() else { return }
        let work = try CLI.scratch("nodata")
        defer { try? FileManager.default.removeItem(at: work) }
        let exe = try install(work.appendingPathComponent("prefix"), ids: [], share: false)
        let r = try CLI.run(["verify"], exe: exe, cwd: work, clean: true)
        #expect(r.status == 2 && r.errLines.count == 1, "\(r.err)")
        #expect(r.err.contains("not inside a BNSpec checkout, BNSPEC_HOME is not set") && r.err.contains("--golden"), "\(r.err)")
    }
}
