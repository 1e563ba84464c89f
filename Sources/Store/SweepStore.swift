import Foundation
import GRDB
import SweepKit

/// How much of the state database a crash can undo: the `PRAGMA synchronous` of the
/// coordinator's connections (the database is in WAL mode; both keep it consistent).
public enum Durability: String, Sendable, CaseIterable {
    /// `synchronous = FULL`: the WAL is fsynced at every commit (one per event-loop turn), so
    /// a committed turn survives a process crash, an OS crash and a power loss (as far as the
    /// disk honours fsync).
    case full
    /// `synchronous = NORMAL`: the WAL is fsynced only at checkpoints, so a committed turn
    /// survives a process crash; an OS crash or power loss may undo the last turns (the
    /// database stays consistent, and the work they recorded runs again).
    case normal

    /// The value `PRAGMA synchronous` reads back as under this setting (2 = FULL, 1 = NORMAL).
    public var synchronousLevel: Int {
        switch self {
        case .full: 2
        case .normal: 1
        }
    }

    /// The default: survives an OS crash (bench/RESULTS.md has what it costs).
    public static let `default` = Durability.full
}

/// The sparsegrid state database.
///
/// The coordinator opens it with `init(path:)` and is its only writer; CLI commands open it
/// with `openReadOnly(path:)` and read while the coordinator writes (WAL mode lets readers
/// see the last committed state without waiting).
public final class SweepStore: Sendable {
    /// Path of the SQLite database file.
    public let path: String
    public let isReadOnly: Bool
    /// The `PRAGMA synchronous` every connection was opened with (a read-only store: `.normal`;
    /// it writes nothing, so it does not matter).
    public let durability: Durability
    let pool: DatabasePool

    /// Opens the database at `path` for writing, creating its directory and the file if
    /// needed, and brings the schema up to date. `durability` sets `PRAGMA synchronous` on
    /// every connection (see `Durability`).
    public init(path: String, durability: Durability = .default) throws {
        self.path = path
        self.isReadOnly = false
        self.durability = durability
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw StoreError(
                    .cannotOpen,
                    "cannot create the state directory \(directory) (\(error.localizedDescription)); "
                        + "check its permissions or pass another --state DIR.")
            }
        }
        pool = try Self.openPool(path: path, readOnly: false, durability: durability)
        do {
            let migrator = Schema.migrator
            let superseded = try pool.read { try migrator.hasBeenSuperseded($0) }
            if superseded {
                throw StoreError(
                    .cannotOpen,
                    "the state database \(path) was written by a newer sparsegrid; "
                        + "run that version, or pass another --state DIR.")
            }
            try migrator.migrate(pool)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(
                .cannotOpen,
                "cannot prepare the state database \(path): \(Self.reason(error)); "
                    + "if the file is not a sparsegrid database, move it aside or pass another --state DIR.")
        }
    }

    private init(readOnlyPath path: String, pool: DatabasePool) {
        self.path = path
        self.isReadOnly = true
        self.durability = .normal
        self.pool = pool
    }

    /// Opens an existing database for reading only; any write through it throws.
    public static func openReadOnly(path: String) throws -> SweepStore {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError(
                .noState,
                "no sparsegrid state at \(path): run `sparsegrid run SPEC` or pass --state DIR")
        }
        let pool = try openPool(path: path, readOnly: true, durability: .normal)
        let upToDate: Bool
        do {
            upToDate = try pool.read { try Schema.migrator.hasCompletedMigrations($0) }
        } catch {
            throw StoreError(
                .cannotOpen,
                "cannot read the state database \(path): \(reason(error)); "
                    + "check that it is a sparsegrid database, or pass another --state DIR.")
        }
        guard upToDate else {
            throw StoreError(
                .cannotOpen,
                "the state database \(path) has an older or newer schema than this sparsegrid; "
                    + "start this version's coordinator on it once to upgrade it, or use the matching version.")
        }
        return SweepStore(readOnlyPath: path, pool: pool)
    }

    private static func openPool(path: String, readOnly: Bool, durability: Durability) throws -> DatabasePool {
        var config = Configuration()
        config.readonly = readOnly
        config.label = "sparsegrid-state"
        // The CLI's occasional writes (retry, cancel) wait for the coordinator's short
        // transactions instead of failing at once.
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            // WAL mode: FULL fsyncs the WAL at every commit, so a commit survives an OS crash
            // or power loss; NORMAL spares that fsync, keeps the database consistent across
            // any crash, and a power loss may undo the last transactions, whose work the
            // coordinator then runs again. A read-only connection writes nothing: NORMAL.
            // (The writer gets it again below: GRDB resets it.)
            switch durability {
            case .full: try db.execute(sql: "PRAGMA synchronous = FULL")
            case .normal: try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
        }
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: config)
        } catch {
            throw StoreError(
                .cannotOpen,
                "cannot open the state database \(path): \(reason(error)); "
                    + "check the path and its permissions, or pass another --state DIR.")
        }
        guard !readOnly else { return pool }
        // Once more on the writer, the connection every commit goes through: DatabasePool's
        // init switches it to WAL and then sets `synchronous = NORMAL` itself, after
        // prepareDatabase (GRDB's Database.setUpWALMode), which would silently undo FULL.
        // Read back, so a library that changes this again fails here instead.
        do {
            let level = try pool.writeWithoutTransaction { db -> Int? in
                try db.execute(sql: "PRAGMA synchronous = \(durability == .full ? "FULL" : "NORMAL")")
                return try Int.fetchOne(db, sql: "PRAGMA synchronous")
            }
            guard level == durability.synchronousLevel else {
                throw StoreError(
                    .cannotOpen,
                    "the state database \(path) kept PRAGMA synchronous = \(level.map(String.init) ?? "?") "
                        + "instead of \(durability.synchronousLevel) (durability \(durability.rawValue)).")
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.cannotOpen, "cannot set PRAGMA synchronous on \(path): \(reason(error)).")
        }
        return pool
    }

    /// `PRAGMA synchronous` as the writer connection has it now (2 = FULL, 1 = NORMAL): what
    /// the coordinator logs at start, and what the tests check.
    public func synchronousInEffect() throws -> Int {
        do {
            return try pool.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") ?? -1 }
        } catch {
            throw StoreError(.cannotOpen, "cannot read PRAGMA synchronous of \(path): \(Self.reason(error)).")
        }
    }

    static func reason(_ error: any Error) -> String {
        if let db = error as? DatabaseError { return db.message ?? "SQLite error \(db.resultCode)" }
        return String(describing: error)
    }

    /// Runs `body` in one write transaction, refusing on a read-only store.
    func write<T>(_ action: String, _ body: (Database) throws -> T) throws -> T {
        guard !isReadOnly else {
            throw StoreError(
                .readOnly,
                "cannot \(action): the state database \(path) was opened read-only; "
                    + "this change must go through the coordinator or a writable store.")
        }
        do {
            return try pool.write(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(
                .batchRejected,
                "cannot \(action) in \(path): \(Self.reason(error)); nothing was changed.")
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try pool.read(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.cannotOpen, "cannot read the state database \(path): \(Self.reason(error)).")
        }
    }
}
