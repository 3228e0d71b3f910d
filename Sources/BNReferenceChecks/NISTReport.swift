import Foundation
import BNCore
import BNGolden
import BNReference
import CGSL

/// Log relative error, LRE = −log10(|x − c| / |c|), the StRD accuracy measure
/// (number of correct significant digits).
///
/// An exact match has no finite LRE; it is reported as 15.95 = −log10(2⁻⁵³), the
/// LRE of half a binary64 ULP — the best a correctly rounded binary64 result can
/// be credited with. A value worse than one digit is reported as 0.
public func logRelativeError(_ x: Double, certified c: Double) -> Double {
    if x == c { return exactLRE }
    guard x.isFinite else { return 0 }
    let rel = c == 0 ? abs(x) : abs(x - c) / abs(c)
    return Swift.min(exactLRE, Swift.max(0, -log10(rel)))
}

/// The LRE credited to an exact match: −log10(2⁻⁵³) ≈ 15.95.
public let exactLRE = -log10(0x1p-53)

/// One row of the NIST accuracy table: our reference's and GSL's LREs.
public struct NISTRow: Codable, Sendable {
    public var dataset: String
    public var n: Int
    public var difficulty: String
    public var certified_mean: Double
    public var certified_sd: Double
    public var mean: Double
    public var sd: Double
    public var lre_mean: Double
    public var lre_sd: Double
    public var gsl_mean: Double
    public var gsl_sd: Double
    public var gsl_lre_mean: Double
    public var gsl_lre_sd: Double
}

/// GSL's statistics for a strided array: `gsl_stats_mean` and `gsl_stats_sd`
/// (denominator n − 1), the independent implementation BNSpec compares with.
public enum GSL {
    public static var version: String { GSL_VERSION }

    public static func mean(_ data: UnsafeBufferPointer<Double>, stride: Int = 1, count: Int) -> Double {
        gsl_stats_mean(data.baseAddress, stride, count)
    }
    /// Σ(x − mean)²/(n − 1).
    public static func unbiasedVariance(_ data: UnsafeBufferPointer<Double>, stride: Int = 1, count: Int) -> Double {
        gsl_stats_variance(data.baseAddress, stride, count)
    }
    /// Σ(x − μ)²/n about a given mean μ (BN's normalisation).
    public static func biasedVariance(_ data: UnsafeBufferPointer<Double>, stride: Int = 1, count: Int, mean: Double) -> Double {
        gsl_stats_variance_with_fixed_mean(data.baseAddress, stride, count, mean)
    }
    public static func sd(_ data: UnsafeBufferPointer<Double>, stride: Int = 1, count: Int) -> Double {
        gsl_stats_sd(data.baseAddress, stride, count)
    }
}

public enum NISTReport {
    /// Computes the table for all nine datasets.
    public static func rows() throws -> [NISTRow] {
        try NISTDataset.loadAll().map { d in
            let n = d.values.count
            let m = d.values.withUnsafeBufferPointer {
                ChannelMoments.compute($0, segments: [ChannelSegment(offset: 0, stride: 1, count: n)])
            }
            let sd = m.unbiasedVariance.squareRoot()
            let (gm, gsd) = d.values.withUnsafeBufferPointer { (GSL.mean($0, count: n), GSL.sd($0, count: n)) }
            return NISTRow(dataset: d.name, n: n, difficulty: d.difficulty,
                           certified_mean: d.certifiedMean, certified_sd: d.certifiedSD,
                           mean: m.mean, sd: sd,
                           lre_mean: logRelativeError(m.mean, certified: d.certifiedMean),
                           lre_sd: logRelativeError(sd, certified: d.certifiedSD),
                           gsl_mean: gm, gsl_sd: gsd,
                           gsl_lre_mean: logRelativeError(gm, certified: d.certifiedMean),
                           gsl_lre_sd: logRelativeError(gsd, certified: d.certifiedSD))
        }
    }
}
