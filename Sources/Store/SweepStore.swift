import Foundation
import GRDB
import SweepKit

/// The sparsegrid state database.
///
/// The coordinator opens it with `init(path:)` and is its only writer; CLI commands open it
/// with `openReadOnly(path:)` and read while the coordinator writes (WAL mode lets readers
/// see the last committed state without waiting).
public final class SweepStore: Sendable {
    /// Path of the SQLite database file.
    public let path: String
    public let isReadOnly: Bool
    let pool: DatabasePool

    /// Opens the database at `path` for writing, creating its directory and the file if
    /// needed, and brings the schema up to date.
    public init(path: String) throws {
        self.path = path
        self.isReadOnly = false
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
        pool = try Self.openPool(path: path, readOnly: false)
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
        self.pool = pool
    }

    /// Opens an existing database for reading only; any write through it throws.
    public static func openReadOnly(path: String) throws -> SweepStore {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError(
                .noState,
                "no sparsegrid state at \(path): run `sparsegrid run SPEC` or pass --state DIR")
        }
        let pool = try openPool(path: path, readOnly: true)
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

    private static func openPool(path: String, readOnly: Bool) throws -> DatabasePool {
        var config = Configuration()
        config.readonly = readOnly
        config.label = "sparsegrid-state"
        // The CLI's occasional writes (retry, cancel) wait for the coordinator's short
        // transactions instead of failing at once.
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            // In WAL mode NORMAL keeps the database consistent across crashes; a power loss
            // may undo the last transactions, which the coordinator redoes (attempts are
            // retried), and it spares an fsync per commit.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            return try DatabasePool(path: path, configuration: config)
        } catch {
            throw StoreError(
                .cannotOpen,
                "cannot open the state database \(path): \(reason(error)); "
                    + "check the path and its permissions, or pass another --state DIR.")
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
