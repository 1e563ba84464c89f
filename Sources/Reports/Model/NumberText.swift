import Foundation
import SweepKit

/// Number spellings shared by every format.
enum NumberText {
    /// Fixed decimals, e.g. fixed(93.14, 1) = "93.1"; never "-0.0".
    static func fixed(_ value: Double, _ decimals: Int) -> String {
        let text = String(format: "%.\(decimals)f", value)
        if text.hasPrefix("-"), Double(text) == 0 { return String(text.dropFirst()) }
        return text
    }

    /// With an explicit sign, for differences: "+0.4", "-1.2".
    static func signed(_ value: Double, _ decimals: Int) -> String {
        let text = fixed(value, decimals)
        return text.hasPrefix("-") || Double(text) == 0 ? text : "+" + text
    }

    /// A plain machine-readable number (CSV, JSON): integers without ".0", others rounded to
    /// 10 significant digits so float noise (93.20000000000002) does not leak into files.
    static func plain(_ value: Double) -> String {
        guard value.isFinite else { return "" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        let rounded = Double(String(format: "%.10g", value)) ?? value
        return "\(rounded)"
    }

    /// Short labels for figures: as many decimals as a value of that size needs.
    static func compact(_ value: Double) -> String {
        fixed(value, abs(value) >= 10 ? 0 : abs(value) >= 1 ? 1 : 2)
    }

    /// "93.1 ± 0.2", or "93.1" for one value.
    static func meanStd(_ mean: Double, _ std: Double?, _ decimals: Int) -> String {
        // Identical values (MAC counts, weight sizes) have nothing to show after a ±.
        guard let std, std > 0 else { return fixed(mean, decimals) }
        return "\(fixed(mean, decimals)) ± \(fixed(std, decimals))"
    }

    /// "1.39× (+27.9%)": the ratio and its percentage under the definition in use.
    static func speedup(_ value: Double, percent: ReportSpec.SpeedupPercent) -> String {
        "\(fixed(value, 2))× (\(signed(percent.percent(value), 1))%)"
    }

    /// "[0.96–2.01]": a ratio's interval.
    static func interval(_ low: Double, _ high: Double) -> String {
        "[\(fixed(low, 2))–\(fixed(high, 2))]"
    }
}
