/// Greedy word wrap for notes in plain-text output.
enum TextWrap {
    static func wrap(_ text: String, width: Int, indent: String = "", hangingIndent: String = "") -> [String] {
        var lines: [String] = []
        var current = indent
        var currentIsEmpty = true
        for word in text.split(separator: " ", omittingEmptySubsequences: true) {
            if !currentIsEmpty && current.count + 1 + word.count > width {
                lines.append(current)
                current = hangingIndent
                currentIsEmpty = true
            }
            current += (currentIsEmpty ? "" : " ") + word
            currentIsEmpty = false
        }
        if !currentIsEmpty { lines.append(current) }
        return lines
    }
}
