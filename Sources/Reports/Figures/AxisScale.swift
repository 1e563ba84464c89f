import Foundation

/// A linear axis with round tick values (1, 2 or 5 × 10^k apart).
struct AxisScale {
    let lower: Double
    let upper: Double
    let step: Double

    /// Covers [minValue, maxValue] with about `targetTicks` intervals.
    init(minValue: Double, maxValue: Double, targetTicks: Int = 5) {
        var lo = minValue, hi = maxValue
        if hi - lo < 1e-12 {
            let pad = abs(hi) > 0 ? abs(hi) * 0.1 : 1
            lo -= pad
            hi += pad
        }
        let raw = (hi - lo) / Double(targetTicks)
        let magnitude = pow(10, floor(log10(raw)))
        let normalized = raw / magnitude
        let factor: Double = normalized < 1.5 ? 1 : normalized < 3 ? 2 : normalized < 7 ? 5 : 10
        step = factor * magnitude
        lower = floor(lo / step + 1e-9) * step
        upper = ceil(hi / step - 1e-9) * step
    }

    var ticks: [Double] {
        let count = Int(((upper - lower) / step).rounded())
        return (0...count).map { lower + Double($0) * step }
    }

    /// Decimals that tell the ticks apart.
    var decimals: Int { step >= 1 ? 0 : Int(ceil(-log10(step) - 1e-9)) }

    func label(_ value: Double) -> String { NumberText.fixed(value, decimals) }

    /// Maps a value to a pixel between `from` (at lower) and `to` (at upper).
    func position(_ value: Double, from: Double, to: Double) -> Double {
        from + (value - lower) / (upper - lower) * (to - from)
    }
}
