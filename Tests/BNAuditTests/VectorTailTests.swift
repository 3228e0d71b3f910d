import BNAudit
import Testing

/// The audit-wide judgement of a vector-loop tail (``VectorTail/judge(_:)``, spec/AUDIT.md §5)
/// on hand-made cases: which widths every case leaves standing, and which cases are named.
@Suite struct VectorTailTests {
    static func failed(_ c: Int, _ failing: ClosedRange<Int>, _ widths: [Int], key: String? = "train NHWC float32") -> VectorTail.Case {
        VectorTail.Case(id: "C\(c)", key: key, channels: c, passed: false, open: true, failing: Array(failing), widths: widths)
    }
    static func passed(_ c: Int, key: String? = "train NHWC float32") -> VectorTail.Case {
        VectorTail.Case(id: "C\(c)", key: key, channels: c, passed: true, open: false, failing: [], widths: [])
    }

    /// A 16-wide tail used from C = 16 on, on C = 17 and 33: a 4- and an 8-wide tail fail the same
    /// channels there, and the passing C = 9, 10, 64 are below its smallest C or have no tail.
    @Test func widthsTheCasesCannotTellApartAreAllNamed() {
        let cases = [Self.failed(17, 16...16, [4, 8, 16]), Self.failed(33, 32...32, [4, 8, 16, 32]),
                     Self.passed(9), Self.passed(10), Self.passed(64)]
        let j = VectorTail.judge(cases)
        #expect(j.widths == [4, 8, 16] && j.named == [0, 1], "\(j)")
        #expect(VectorTail.cause(channels: 17, widths: j.widths).contains("the tail of a 4-, 8- or 16-wide vector loop over channels"))
    }

    /// A case with C = 24 failing in channels 16–23 tells 16 wide from 4 and 8 wide (24 mod 8 = 0).
    @Test func aChannelCountThatTellsThemApartLeavesOneWidth() {
        let cases = [Self.failed(17, 16...16, [4, 8, 16]), Self.failed(24, 16...23, [16]), Self.passed(64)]
        let j = VectorTail.judge(cases)
        #expect(j.widths == [16] && j.named == [0, 1], "\(j)")
        #expect(j.against.contains { $0.hasPrefix("4-wide: C24 fails in channels 16…23 of C = 24") }, "\(j.against)")
    }

    /// A case that passes with a tail where the loop runs rules its width out: a real 8-wide tail
    /// on C = 9 and 10 is not a 4-wide one when C = 12 (12 mod 4 = 0, 12 mod 8 = 4) fails in 8–11;
    /// a 4-wide claim on C = 9 alone dies on a passing C = 10.
    @Test func aPassingCaseWithATailRulesItsWidthOut() {
        let eight = VectorTail.judge([Self.failed(9, 8...8, [4, 8]), Self.failed(12, 8...11, [8]), Self.passed(16)])
        #expect(eight.widths == [8] && eight.named == [0, 1], "\(eight)")
        let none = VectorTail.judge([Self.failed(9, 8...8, [4, 8]), Self.passed(10)])
        #expect(none.widths.isEmpty && none.named.isEmpty, "\(none)")
        #expect(none.against.contains { $0.contains("C10 passes with C = 10") }, "\(none.against)")
        // A passing case of another operation (another kernel path) says nothing: the one case
        // left cannot tell a tail from every channel from 8 on.
        let other = VectorTail.judge([Self.failed(9, 8...8, [4, 8]), Self.passed(10, key: "backward-train NHWC float32")])
        #expect(other.widths == [4, 8] && other.named.isEmpty, "\(other)")
        #expect(other.against.contains { $0.hasPrefix("every channel from 8 on fails as well as a tail does") }, "\(other.against)")
    }

    /// An outside red team's γ and β swapped from channel 8 on: C = 9 looks like a tail, C = 16
    /// (channels 8–15) is no width's; an open NCHW failure rules every width out.
    @Test func anOpenFailureOutsideEveryTailWithdrawsTheCause() {
        let swapped = VectorTail.judge([Self.failed(9, 8...8, [4, 8]), Self.failed(16, 8...15, [])])
        #expect(swapped.widths.isEmpty && swapped.named.isEmpty && swapped.against.count == 2, "\(swapped)")
        let nchw = VectorTail.judge([Self.failed(9, 8...8, [4, 8]), Self.failed(3, 0...2, [], key: nil)])
        #expect(nchw.named.isEmpty && nchw.against.allSatisfy { $0.contains("an NCHW case") }, "\(nchw)")
    }

    /// Two simpler bugs fail the same channels and must be ruled out (an outside red team's):
    /// every channel from a fixed index on (β for γ from channel 8 on, on C = 10 and 15 only: both
    /// tails start at 8, and no case with more channels passes), and the last channel (C = 5, 9
    /// and 17, one tail channel each; a passing C = 16 rules it out, and the suite cannot tell a
    /// 2- from a 4-wide tail there).
    @Test func simplerBugsThatFailTheSameChannelsAreRuledOutFirst() {
        let fromEight = VectorTail.judge([Self.failed(10, 8...9, [2, 4, 8]), Self.failed(15, 8...14, [8]), Self.passed(3)])
        #expect(fromEight.named.isEmpty && fromEight.against.contains { $0.hasPrefix("every channel from 8 on") }, "\(fromEight)")
        let lastOnly = VectorTail.judge([Self.failed(5, 4...4, [2, 4]), Self.failed(9, 8...8, [2, 4, 8]), Self.failed(17, 16...16, [2, 4, 8, 16])])
        #expect(lastOnly.named.isEmpty && lastOnly.against.contains { $0.hasPrefix("the last 1 channel of every failing case") }, "\(lastOnly)")
        let twoWide = VectorTail.judge([Self.failed(5, 4...4, [2, 4]), Self.failed(9, 8...8, [2, 4, 8]), Self.failed(17, 16...16, [2, 4, 8, 16]), Self.passed(16)])
        #expect(twoWide.widths == [2, 4] && twoWide.named == [0, 1, 2], "\(twoWide)")
        #expect(VectorTail.cause(channels: 5, widths: twoWide.widths).contains("the tail of a 2- or 4-wide vector loop over channels"))
    }

    /// Every channel wrong where C is small is every width's tail there, and no loop's sign by
    /// itself: named only beside cases with full vectors right.
    @Test func everyChannelWrongAtSmallCNeedsALoopElsewhere() {
        let small = [Self.failed(3, 0...2, [4, 8, 16, 32]), Self.failed(5, 0...4, [8, 16, 32]), Self.failed(9, 0...8, [16, 32])]
        let alone = VectorTail.judge(small)
        #expect(alone.named.isEmpty, "\(alone)")
        let withLoop = VectorTail.judge(small + [Self.failed(17, 16...16, [4, 8, 16]), Self.failed(33, 32...32, [4, 8, 16, 32]), Self.passed(64)])
        #expect(withLoop.widths == [16] && withLoop.named == [0, 1, 2, 3, 4], "\(withLoop)")
        #expect(VectorTail.cause(channels: 3, widths: [16]).hasPrefix("every channel is wrong (with C = 3 all of them are the tail of a 16-wide"))
    }
}
