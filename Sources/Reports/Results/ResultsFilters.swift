import SweepKit

/// Checks the filters of `sparsegrid results` against the tasks they choose from, so a
/// mistyped key or value is an error with suggestions rather than an empty table.
public enum ResultsFilters {
    /// The first problem with `--stage` and the `--where KEY=VALUE` filters, as one line that
    /// names the option, or nil when every key is a parameter some task has and every value
    /// one that some task has. `rows`: every task the filters choose from (the named sweep's,
    /// or all sweeps'). `--where state=…` is the caller's to check (a task state). With no
    /// rows there is nothing to check against: nil.
    public static func problem(stage: String?, filters: [(key: String, value: String)], among rows: [ResultRow])
        -> String?
    {
        guard !rows.isEmpty else { return nil }
        if let stage {
            let stages = Dimension(name: "stage").ordered(Set(rows.map(\.stage)))
            if !stages.contains(stage) {
                return "--stage \(plain(stage)): no task has this stage;"
                    + Suggestions.tail(
                        for: stage, in: stages.map(plain), label: "Stages", list: Suggestions.sample(stages.map(plain)))
            }
        }
        // Every task has a method (the train stage's is `dense`), and `state`.
        let keys = Set(rows.flatMap(\.params.keys)).union(["method"]).sorted()
        for filter in filters where filter.key != "state" {
            let shown = "--where \(plain(filter.key))=\(plain(filter.value))"
            if filter.key == "stage" || filter.key == "sweep" {
                return "\(shown): the \(filter.key) is not a parameter; use --\(filter.key) \(plain(filter.value))."
            }
            guard keys.contains(filter.key) else {
                let valid = keys + ["state"]
                return "\(shown): no task has a parameter `\(plain(filter.key))`;"
                    + Suggestions.tail(
                        for: filter.key, in: valid.map(plain), label: "Keys", list: Suggestions.sample(valid.map(plain))
                    )
            }
            let dimension = Dimension(name: filter.key)
            // A task without the parameter has no value for it (except method: `dense`).
            let present = rows.filter { filter.key == "method" || $0.params[filter.key] != nil }
            let values = dimension.ordered(Set(present.map(dimension.value(of:))))
            if !values.contains(filter.value) {
                return "\(shown): no task has \(plain(filter.key)) `\(plain(filter.value))`;"
                    + Suggestions.tail(
                        for: filter.value, in: values.map(plain), label: "Values of \(plain(filter.key))",
                        list: Suggestions.sample(values.map(plain)))
            }
        }
        return nil
    }

    /// A name or value as it may appear in a one-line message: control characters become
    /// spaces, and a long one is cut (names come from specs and the command line).
    public static func plain(_ text: String) -> String {
        var out = ""
        var count = 0
        for u in text.unicodeScalars {
            if count == maxShown {
                out += "…"
                break
            }
            out.unicodeScalars.append(u.value < 0x20 || (0x7F...0x9F).contains(u.value) ? " " : u)
            count += 1
        }
        return out
    }

    public static let maxShown = 80
}
