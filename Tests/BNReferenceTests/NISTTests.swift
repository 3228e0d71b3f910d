import BNReferenceChecks
import Testing

/// LREs of the reference on the NIST StRD univariate datasets must reach the
/// binary64 ceiling (the exact statistics of the data after decimal → binary
/// rounding, see spec/SPEC.md §5).
@Suite struct NISTTests {
    static let floors: [String: (mean: Double, sd: Double)] = [
        "PiDigits": (15, 15), "Lottery": (15, 15), "Lew": (15, 15),
        "Mavro": (15, 13), "Michelso": (15, 13.5),
        "NumAcc1": (15, 15), "NumAcc2": (15, 15), "NumAcc3": (15, 9.4), "NumAcc4": (15, 8.2),
    ]

    @Test func everyDatasetReachesItsFloor() throws {
        let rows = try NISTReport.rows()
        #expect(rows.map(\.dataset).sorted() == Self.floors.keys.sorted())
        for r in rows {
            let f = Self.floors[r.dataset]!
            #expect(r.lre_mean >= f.mean, "\(r.dataset): mean LRE \(r.lre_mean) < \(f.mean)")
            #expect(r.lre_sd >= f.sd, "\(r.dataset): sd LRE \(r.lre_sd) < \(f.sd)")
            // GSL is an independent implementation run on the same parsed data; it is
            // shown beside ours and must at least be sane (≥ 8 digits everywhere).
            #expect(r.gsl_lre_mean >= 8 && r.gsl_lre_sd >= 8, "\(r.dataset): GSL LREs \(r.gsl_lre_mean), \(r.gsl_lre_sd)")
        }
    }

    @Test func datasetsParseWithCertifiedCounts() throws {
        let expected = ["PiDigits": 5000, "Lottery": 218, "Lew": 200, "Mavro": 50, "Michelso": 100,
                        "NumAcc1": 3, "NumAcc2": 1001, "NumAcc3": 1001, "NumAcc4": 1001]
        for r in try NISTReport.rows() { #expect(r.n == expected[r.dataset]) }
    }

    @Test func lreOfExactMatchIsHalfAnUlp() {
        #expect(abs(logRelativeError(1.5, certified: 1.5) - 15.954589770191003) < 1e-12)
        #expect(abs(logRelativeError(1.0001, certified: 1) - 4) < 1e-6)
    }
}
