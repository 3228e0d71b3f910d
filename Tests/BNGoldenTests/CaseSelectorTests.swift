import BNCore
import BNGolden
import Foundation
import Testing

/// One case selection for every command (issue #15): `--case` is an exact id, `--match` a
/// substring or glob, `--exclude` removes, the manifest's order is kept, and a repro line's
/// `--case` selects exactly its one case.
@Suite struct CaseSelectorTests {
    static let ids: [String] = (try? GoldenStore.manifest(GoldenSuiteTests.golden).cases) ?? []
    static let train = "train.normal.2x3x1x1.NCHW.f32.pytorch.eps1e-05.m0.1"

    @Test func exactIdSelectsOneCaseEvenWhenOtherIdsContainIt() throws {
        let contains = Self.ids.filter { $0.contains(Self.train) }
        #expect(contains.count >= 2, "the suite should hold backward-\(Self.train) too")
        #expect(try CaseSelector(ids: [Self.train]).select(Self.ids, source: "golden") == [Self.train])
        #expect(try CaseSelector(match: [Self.train]).select(Self.ids, source: "golden") == contains)
    }

    @Test func globsMatchTheWholeIdAndSubstringsAnyPart() throws {
        let glob = try CaseSelector(match: ["train.*.NC.*"]).select(Self.ids, source: "golden")
        #expect(!glob.isEmpty && glob.allSatisfy { $0.hasPrefix("train.") && $0.contains(".NC.") })
        #expect(glob == Self.ids.filter { $0.hasPrefix("train.") && $0.split(separator: ".").contains("NC") })
        #expect(CaseSelector.matches("tra?n.*", "train.x") && !CaseSelector.matches("rain.*", "train.x"))
        #expect(CaseSelector.matches("*.[bf]16.*", "y.bf16.z") == false && CaseSelector.matches("*.[bf]f16.*", "y.bf16.z"))
        #expect(CaseSelector.matches("NCHW", "train.NCHW.f32") && !CaseSelector.matches("nchw", "train.NCHW.f32"))
    }

    @Test func excludeAndUnionKeepTheManifestOrder() throws {
        let sel = CaseSelector(ids: [Self.ids[5], Self.ids[1]], match: ["trajectory"], exclude: ["*k20", "flax"])
        let got = try sel.select(Self.ids, source: "golden")
        let want = Self.ids.enumerated().filter { i, id in
            (i == 1 || i == 5 || id.contains("trajectory")) && !id.hasSuffix("k20") && !id.contains("flax")
        }.map(\.1)
        #expect(got == want && got.count > 3)
        #expect(try CaseSelector().select(Self.ids, source: "golden") == Self.ids)
    }

    @Test func unknownIdAndEmptySelectionAreOneLineErrors() {
        for (sel, want) in [(CaseSelector(ids: ["train.nope"]), "no case 'train.nope' in golden"),
                            (CaseSelector(match: ["nope"]), "no case selected in golden (--match 'nope')"),
                            (CaseSelector(exclude: ["*"]), "no case selected in golden (--exclude '*')")] {
            do { _ = try sel.select(Self.ids, source: "golden"); Issue.record("\(sel.description): selected") } catch let e as BNError {
                #expect(e.description.contains(want) && !e.description.contains("\n"), "\(e.description)")
            } catch { Issue.record("\(error)") }
        }
    }

    func run(_ args: [String]) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: InterruptedGenerateTests.bnspec)
        p.arguments = args
        p.currentDirectoryURL = InterruptedGenerateTests.root
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// `--list` prints the same ids in every command for the same selection, and an audit
    /// repro line (`--case ID`) selects exactly one case.
    @Test func everyCommandListsTheSameSelection() throws {
        guard InterruptedGenerateTests.bnspecIsBuilt() else { return }
        let selection = ["--match", "*2x3x1x1.*pytorch*", "--exclude", "NHWC"]
        let verify = try run(["verify", "--list"] + selection)
        #expect(verify.status == 0)
        let listed = verify.out.split(separator: "\n").map(String.init)
        #expect(listed == Self.ids.filter { CaseSelector.matches("*2x3x1x1.*pytorch*", $0) && !$0.contains("NHWC") } && listed.count >= 2)
        for cmd in [["audit", "--list"], ["export", "--list"], ["generate", "--check", "--list"]] {
            let r = try run(cmd + selection)
            #expect(r.status == 0 && r.out == verify.out, "\(cmd): \(r.out)")
        }
        let repro = try run(["audit", "--list", "--profile", "pytorch", "--case", Self.train])
        #expect(repro.status == 0 && repro.out == "\(Self.train)\n")
    }
}

/// `--shard K/N` (issue 16): 64-bit FNV-1a of the id modulo N, a partition of any selection.
@Suite struct ShardTests {
    @Test func fnv1aMatchesTheReferenceVectors() {
        // From the FNV reference (Fowler, Noll, Vo; draft-eastlake-fnv): FNV-1a 64-bit.
        #expect(Shard.fnv1a("") == 0xcbf2_9ce4_8422_2325)
        #expect(Shard.fnv1a("a") == 0xaf63_dc4c_8601_ec8c)
        #expect(Shard.fnv1a("foobar") == 0x8594_4171_f739_67e8)
    }

    @Test func shardsPartitionEverySelection() throws {
        let ids = CaseSelectorTests.ids
        for n in [1, 2, 3, 7, 500] {
            var seen: [String: Int] = [:]
            for k in 1...n {
                let sel = CaseSelector(match: ["train"], shard: try Shard(index: k, count: n))
                for id in try sel.select(ids, source: "golden") { seen[id, default: 0] += 1 }
            }
            let train = ids.filter { $0.contains("train") }
            #expect(seen.count == train.count && seen.values.allSatisfy { $0 == 1 }, "N = \(n)")
        }
        // An empty shard of a non-empty selection is no error (a CI matrix has a fixed N); an empty selection still is.
        let lone = CaseSelectorTests.train
        let shard = Int(Shard.fnv1a(lone) % 2) + 1
        #expect(try CaseSelector(ids: [lone], shard: try Shard(index: 3 - shard, count: 2)).select(ids, source: "g").isEmpty)
        #expect(try CaseSelector(ids: [lone], shard: try Shard(index: shard, count: 2)).select(ids, source: "g") == [lone])
        #expect(throws: BNError.self) { try CaseSelector(match: ["nope"], shard: try Shard(index: 1, count: 2)).select(ids, source: "g") }
        for bad in ["0/3", "4/3", "1/0", "a/b", "1/2/3", "-1/2"] { #expect(throws: BNError.self) { try Shard(parsing: bad) } }
    }
}
