/// A failure of the state database, with a sentence that says what went wrong and what to do.
public struct StoreError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: Sendable, Equatable {
        /// No database exists where a read-only open looked for one.
        case noState
        /// The database could not be opened, created or upgraded.
        case cannotOpen
        /// A write was attempted through a store opened with `openReadOnly`.
        case readOnly
        /// A mutation or command named a sweep, task or attempt the database does not hold.
        case notFound
        /// A batch of mutations was rejected by the database; nothing in it was saved.
        case batchRejected
        /// A plan cannot be stored as given (e.g. two tasks share an id).
        case invalidPlan
        /// A stored value could not be read back (e.g. an unknown task state).
        case corrupt
        /// A backup's target exists (or its directory does not): nothing is overwritten.
        case backupRefused
        /// A backup could not be copied, checked or put in place; nothing was left at its target.
        case backupFailed
    }

    public let code: Code
    public let description: String

    init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}
