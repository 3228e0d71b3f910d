import BNAudit
import BNCore
import BNGolden
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Issue 14 items 2, 3, 8: golden bits independent of what built them, `--out` through a symlink,
/// and one consistent generation per run while another is swapped in.
@Suite struct GoldenArtifactTests {
    static let root: URL = Checkout.root(from: URL(fileURLWithPath: #filePath))!

    static func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bnspec-artifact-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    static func files(_ catalog: String) throws -> [String: Data] {
        try Generator.suiteFiles(try Catalog.parse(catalog, source: "test").cases[Catalog.defaultSuite] ?? [], suite: Catalog.defaultSuite)
    }

    /// The NaN bit patterns of an NPY file's data (header skipped), as UInt64.
    static func nanPatterns(_ data: Data) throws -> [UInt64] {
        let a = try NPYArray.decode(data, name: "x", bfloat16: true)
        let body = data.count - a.values.count * a.dtype.byteWidth
        return data.withUnsafeBytes { raw in
            a.values.indices.filter { a.values[$0].isNaN }.map { i -> UInt64 in
                let o = body + i * a.dtype.byteWidth
                switch a.dtype {
                case .f64: return raw.loadUnaligned(fromByteOffset: o, as: UInt64.self)
                case .f32: return UInt64(raw.loadUnaligned(fromByteOffset: o, as: UInt32.self))
                case .f16, .bf16: return UInt64(raw.loadUnaligned(fromByteOffset: o, as: UInt16.self))
                }
            }
        }
    }

    /// Any NaN — either sign, quiet or signalling, any payload — is written as the one canonical
    /// NaN of its format (SPEC §6.3).
    @Test(arguments: DType.allCases)
    func everyWrittenNaNIsCanonical(dtype: DType) throws {
        let nans: [Double] = [.nan, -.nan, Double(bitPattern: 0xFFF8_0000_0000_0000), Double(bitPattern: 0x7FF0_0000_0000_0001),
                              Double(bitPattern: 0xFFF4_0000_DEAD_BEEF), Double(Float(bitPattern: 0xFFC0_0001)), 1.5]
        let data = NPYArray(dtype: dtype, shape: [nans.count], values: nans).encoded()
        let patterns = try Self.nanPatterns(data)
        #expect(patterns.count == nans.count - 1)
        #expect(patterns.allSatisfy { $0 == dtype.canonicalNaNBits }, "\(dtype): \(patterns.map { String($0, radix: 16) })")
    }

    /// The committed golden files hold only canonical NaNs (a debug build on x86 computes
    /// 0xFFF8… for ∞ − ∞; a release build or an Arm machine 0x7FF8…).
    @Test func goldenHoldsOnlyCanonicalNaN() throws {
        let golden = Self.root.appendingPathComponent("golden")
        var nans = 0
        for path in GoldenStore.listFiles(golden) where path.hasSuffix(".npy") {
            let data = try Data(contentsOf: golden.appendingPathComponent(path))
            let a = try NPYArray.decode(data, name: path, bfloat16: true)
            for p in try Self.nanPatterns(data) {
                nans += 1
                #expect(p == a.dtype.canonicalNaNBits, "\(path): NaN stored as 0x\(String(p, radix: 16))")
            }
        }
        #expect(nans > 0, "golden/ has no NaN at all: the nonfinite cases are missing")
    }

    /// Output digests give equal digests for outputs that differ only in NaN sign or payload (a
    /// release and a debug build), and different ones for any other bit.
    @Test func outputDigestIgnoresOnlyNaNSignAndPayload() {
        let a = CaseResult.outputDigest(["y": [1, .nan, -0.0]])
        #expect(a == CaseResult.outputDigest(["y": [1, Double(bitPattern: 0xFFF8_0000_0000_0000), -0.0]]))
        #expect(a == CaseResult.outputDigest(["y": [1, Double(bitPattern: 0x7FF0_0000_0000_0042), -0.0]]))
        #expect(a != CaseResult.outputDigest(["y": [1, .nan, 0.0]]))
        #expect(a != CaseResult.outputDigest(["y": [1, .infinity, -0.0]]))
    }

    /// `--out LINK --force`: the folder the link names is replaced (atomically, inside its own
    /// parent); the link stays a link to it. A link to nothing is refused in one line.
    @Test func forceThroughASymlinkReplacesItsTarget() throws {
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: work) }
        let real = work.appendingPathComponent("store/golden-real"), link = work.appendingPathComponent("links/golden")
        try FileManager.default.createDirectory(at: link.deletingLastPathComponent(), withIntermediateDirectories: true)
        let old = try Self.files("train data=normal shape=2x3x1x1\n"), new = try Self.files("train data=normal shape=4x3x5x5\n")
        try GoldenStore.write(old, to: real, force: false)
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: "../store/golden-real")
        try GoldenStore.write(new, to: link, force: true)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link.path)) == "../store/golden-real", "the link was replaced")
        #expect(GoldenStore.listFiles(real).count == new.count)
        #expect(try GoldenStore.differences(new, in: real).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: work.appendingPathComponent("store").path) == ["golden-real"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: link.deletingLastPathComponent().path) == ["golden"])
        let dangling = work.appendingPathComponent("links/dangling")
        try FileManager.default.createSymbolicLink(atPath: dangling.path, withDestinationPath: "/nonexistent/golden")
        #expect {
            try GoldenStore.write(new, to: dangling, force: true)
        } throws: { ($0 as? BNError)?.description.contains("is a symlink to nothing") == true }
    }

    /// Torn reads: while another thread swaps two generations into the folder again and again,
    /// every complete read of it (manifest, then every case) is one generation — never a file
    /// "missing" or a checksum mismatch between generations; a read that loses its generation to
    /// the swap says "golden changed during the run".
    @Test func aRunReadsOneGenerationWhileAnotherIsSwappedIn() throws {
        let work = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: work) }
        let dir = work.appendingPathComponent("golden")
        let a = try Self.files("train data=normal,uniform shape=4x3x5x5,2x3x1x1 layout=NCHW,NHWC\ninfer data=normal shape=4x3x5x5\n")
        // Generation B: the same cases with every x.npy changed in its last byte (hashes to match).
        var b = a
        for (path, data) in a where path.hasSuffix("/x.npy") {
            var d = data
            d[d.count - 1] ^= 0x01
            b[path] = d
        }
        var manifest = try JSONDecoder().decode(Manifest.self, from: a[Manifest.fileName]!)
        manifest.files = b.filter { $0.key != Manifest.fileName }.mapValues { SHA256.hex($0) }
        b[Manifest.fileName] = try JSONEncoder().encode(manifest)
        try GoldenStore.write(a, to: dir, force: false)
        let stop = Counter(), finished = DispatchSemaphore(value: 0), swaps = Counter()
        Thread.detachNewThread { [a, b] in
            while stop.value == 0 {
                let n = swaps.add(1)
                if (try? GoldenStore.write(n % 2 == 0 ? a : b, to: dir, force: true)) == nil { break }
                // Every fourth swap, a pause a read fits in even when reads are slow (sanitizer
                // builds): back-to-back swaps alone left no read complete under ASan.
                if n % 4 == 0 { usleep(50_000) }
            }
            finished.signal()
        }
        var complete = 0, changed = 0
        let deadline = Date().addingTimeInterval(30)
        while swaps.value < 16 && Date() < deadline {
            do {
                let m = try GoldenStore.manifest(dir)
                let xs = try m.cases.map { try GoldenStore.loadCase(dir, id: $0, manifest: m).inputs["x"]!.values.last! }
                let fromA = try m.cases.map { id in
                    try NPYArray.decode(a["\(id)/x.npy"]!, name: id).values.last! == xs[m.cases.firstIndex(of: id)!]
                }
                #expect(Set(fromA).count == 1, "one read mixed both generations")
                complete += 1
            } catch let e as BNError {
                if e.description.contains("golden changed during the run") { changed += 1 } else {
                    Issue.record("a read during the swaps failed otherwise: \(e.description)")
                }
            }
        }
        _ = stop.add(1)
        finished.wait()
        #expect(swaps.value >= 16, "only \(swaps.value) swaps in 30 s: the reads were hardly disturbed")
        #expect(complete > 0, "no complete read during \(swaps.value) swaps (\(changed) reported the change)")
        print("torn-read test: \(swaps.value) swaps, \(complete) complete reads, \(changed) reported 'golden changed during the run'")
    }
}
