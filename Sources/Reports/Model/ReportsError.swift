/// Why a listing, a report or a reference table could not be produced. `description` is a
/// whole sentence that says what is wrong, where, and what to do about it.
public struct ReportsError: Error, CustomStringConvertible, Equatable, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: String {
            case unsupportedFormat, unknownSortKey, unreadableReference, malformedReference, cannotWrite
        }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        /// The format is not offered by this output (e.g. LaTeX for the results listing).
        public static let unsupportedFormat = Code(.unsupportedFormat)
        /// `sortBy` names no column of the listing.
        public static let unknownSortKey = Code(.unknownSortKey)
        /// The reference CSV could not be read from disk.
        public static let unreadableReference = Code(.unreadableReference)
        /// The reference CSV was read but its content is not a valid reference table.
        public static let malformedReference = Code(.malformedReference)
        /// A report file or directory could not be written.
        public static let cannotWrite = Code(.cannotWrite)

        public var description: String { kind.rawValue }
    }

    public let code: Code
    public let description: String

    public init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}
