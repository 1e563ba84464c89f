/// "Did you mean …?" for mistyped names (in specs, and in the CLI's options).
public enum Suggestions {
    /// The closest candidate within two edits, or one the word is a prefix of; nil if none is close.
    public static func closest(to word: String, in candidates: [String]) -> String? {
        var best: (name: String, distance: Int)?
        let lower = word.lowercased()
        // Names in a spec can be long and many; an edit distance is quadratic in the lengths,
        // so only near-equal lengths are compared (more than two apart is never within two edits).
        // Only the first `maxCandidates` are compared: past that (thousands of methods) a
        // suggestion per mistake would cost more than it helps.
        guard word.utf8.count <= maxNameLength else { return nil }
        let length = lower.count
        for candidate in candidates.prefix(maxCandidates) where candidate.utf8.count <= maxNameLength {
            let c = candidate.lowercased()
            if abs(c.count - length) > 2, !c.hasPrefix(lower) { continue }
            var d = editDistance(lower, c)
            // A short word is two edits away from many names: only accept edits that leave
            // most of it intact.
            if d > 2 || d >= max(word.count, 1) { d = Int.max }
            if d == Int.max, lower.count >= 2, c.hasPrefix(lower) { d = c.count - lower.count }
            if d == Int.max { continue }
            if best == nil || d < best!.distance { best = (candidate, d) }
        }
        return best?.name
    }

    /// What follows "…is not X;" in a message: " did you mean `x`? Models: a, b." when a
    /// candidate is close, else " models: a, b."
    public static func tail(for word: String, in candidates: [String], label: String, list: String) -> String {
        guard let match = closest(to: word, in: candidates) else {
            return " \(label.prefix(1).lowercased() + label.dropFirst()): \(list)."
        }
        return " did you mean `\(match)`? \(label): \(list)."
    }

    /// Levenshtein distance over characters.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }

    /// Longer names get no suggestion.
    static let maxNameLength = 256
    static let maxCandidates = 1_000

    /// Names from the spec, for a message: all of them when few, else the first `limit` and
    /// how many there are, so a spec with thousands of names cannot make every message huge.
    /// `total`: how many there are when `names` holds only the first few.
    public static func sample(_ names: [String], limit: Int = 12, total: Int? = nil) -> String {
        let total = total ?? names.count
        guard total > limit else { return names.joined(separator: ", ") }
        return names.prefix(limit).joined(separator: ", ") + ", … (\(total.grouped) in all)"
    }

    /// "a, b or c" for messages.
    public static func list(_ names: [String]) -> String {
        guard names.count > 1 else { return names.first ?? "" }
        return names.dropLast().joined(separator: ", ") + " or " + names.last!
    }
}
