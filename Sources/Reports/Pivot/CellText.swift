/// How a measured cell reads in a table. A complete cell with the table's usual number of
/// tasks is just "93.1 ± 0.2"; anything else says what it holds, e.g.
/// "93.1 ± 0.2 (n=2, 1 failed)", "failed", "1 failed, 2 running", or "— [1]" for a null with
/// its footnote.
enum CellText {
    static func measured(_ stats: CellStats, decimals: Int, usualN: Int, footnote: (String) -> Int) -> String {
        let gaps = stats.gaps.filter { $0.0 > 0 }
        if !stats.values.isEmpty {
            let number = NumberText.meanStd(stats.mean!, stats.std, decimals)
            var qualifiers = gaps.map { "\($0.0) \($0.1)" }
            if stats.nulls > 0 { qualifiers.insert("\(stats.nulls) null", at: 0) }
            if qualifiers.isEmpty && stats.n == usualN { return number }
            return "\(number) (\((["n=\(stats.n)"] + qualifiers).joined(separator: ", ")))"
        }
        if stats.nulls > 0 && gaps.isEmpty {
            let marks = stats.nullReasons.map { "[\(footnote($0))]" }
            return (["—"] + marks).joined(separator: " ")
        }
        if gaps.count == 1 { return gaps[0].1 }
        if gaps.isEmpty { return "missing" }
        return gaps.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
    }
}
