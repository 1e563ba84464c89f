import Foundation
import GRDB

#if canImport(Glibc)
    import Glibc
#endif

/// What `SweepStore.backup(to:)` wrote.
public struct BackupSummary: Sendable, Equatable {
    /// Where the backup now is (the `to` path).
    public let path: String
    public let bytes: Int64
    /// Database pages copied, and in how many steps (`pagesPerStep` at a time).
    public let pages: Int
    public let steps: Int
    /// Seconds the copy itself took (the snapshot was held that long).
    public let copySeconds: Double
    /// What the copy holds, counted on the copy after its integrity check.
    public let sweeps: Int
    public let tasks: Int
    public let results: Int
    public let artifacts: Int
}

extension SweepStore {
    /// Pages copied per step of an online backup (4 MiB at SQLite's default 4 KiB pages).
    public static let backupPagesPerStep: Int32 = 1024

    /// Copies the database to a new file `out`, consistently, while the coordinator keeps
    /// writing (SQLite's online backup API).
    ///
    /// The copy is one snapshot: the backup runs inside one read transaction of this store's
    /// pool, so every step copies pages of the same committed state (in WAL mode a reader holds
    /// its snapshot and never blocks the writer; the backup never restarts). It is written to a
    /// temporary file next to `out` (mode 0600), turned into a self-contained rollback-journal
    /// database, checked with `PRAGMA integrity_check` and the schema check, synced, and only
    /// then linked into place, atomically and without replacing anything: `out` must not exist.
    /// On any failure nothing is left at `out` and the temporary file is removed.
    ///
    /// `progress` is called after each step with (pages copied, pages in all).
    public func backup(
        to out: String, pagesPerStep: Int32 = backupPagesPerStep,
        progress: ((_ copied: Int, _ total: Int) -> Void)? = nil
    ) throws -> BackupSummary {
        guard pagesPerStep > 0 || pagesPerStep == -1 else {
            throw StoreError(.backupFailed, "pages per backup step must be positive (or -1 for all at once).")
        }
        var info = stat()
        if lstat(out, &info) == 0 {
            let what = (info.st_mode & S_IFMT) == S_IFDIR ? "is a directory" : "exists"
            throw StoreError(
                .backupRefused,
                "\(out) \(what); a backup never overwrites anything: name a new file, or move \(out) away first.")
        }
        let directory = Self.directory(of: out)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw StoreError(
                .backupRefused, "the directory \(directory) for the backup \(out) does not exist; create it first.")
        }
        let temp =
            "\(directory)/.\((out as NSString).lastPathComponent).partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StoreError(
                .backupFailed,
                "cannot create a file in \(directory) for the backup (\(String(cString: strerror(errno)))); "
                    + "check that you may write there, or name another OUT.")
        }
        _ = fchmod(fd, 0o600)
        close(fd)
        var placed = false
        defer {
            if !placed {
                for suffix in ["", "-journal", "-wal", "-shm"] { unlink(temp + suffix) }
            }
        }
        func failed(_ what: String, _ error: any Error) -> StoreError {
            StoreError(
                .backupFailed,
                "cannot back up \(path) to \(out): \(what): \(Self.reason(error)); nothing was written to \(out).")
        }

        // Copy: one read transaction on the source, several steps.
        var steps = 0
        var pages = 0
        let started = ContinuousClock.now
        do {
            let destination = try DatabaseQueue(path: temp)
            try pool.backup(to: destination, pagesPerStep: pagesPerStep) { step in
                steps += 1
                pages = step.totalPageCount
                progress?(step.completedPageCount, step.totalPageCount)
            }
            // The source is in WAL mode and the copy says so in its header: make the copy a
            // single self-contained file (no -wal or -shm needed to read it, safe to move).
            try destination.writeWithoutTransaction { db in
                _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = DELETE")
            }
            try destination.close()
        } catch {
            throw failed("the copy failed", error)
        }
        let elapsed = ContinuousClock.now - started
        let copySeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18

        // Check the copy before it gets the name a restore will trust.
        let counts: (sweeps: Int, tasks: Int, results: Int, artifacts: Int)
        do {
            var config = Configuration()
            config.readonly = true
            let copy = try DatabaseQueue(path: temp, configuration: config)
            defer { try? copy.close() }
            counts = try copy.read { db in
                let check = try String.fetchAll(db, sql: "PRAGMA integrity_check")
                    .filter { try !Self.isFalseNullReport($0, db) }
                guard check == ["ok"] || check.isEmpty else {
                    throw StoreError(
                        .backupFailed,
                        "cannot back up \(path) to \(out): the copy failed its integrity check ("
                            + check.prefix(5).joined(separator: "; ")
                            + "); nothing was written to \(out). Check the disk, then try again.")
                }
                guard try Schema.migrator.hasCompletedMigrations(db) else {
                    throw StoreError(
                        .backupFailed,
                        "cannot back up \(path) to \(out): the copy does not have this sparsegrid's schema; "
                            + "nothing was written to \(out).")
                }
                func count(_ table: String) throws -> Int {
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0
                }
                return (try count("sweeps"), try count("tasks"), try count("results"), try count("artifacts"))
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw failed("the copy could not be checked", error)
        }

        // Durable before it is named, then named atomically, never over an existing file.
        try Self.sync(temp, what: "the backup's temporary file", out: out)
        if link(temp, out) != 0 {
            let linkError = errno
            if linkError == EEXIST {
                throw StoreError(
                    .backupRefused,
                    "\(out) appeared while the backup ran; a backup never overwrites anything: "
                        + "name a new file, or move \(out) away first.")
            }
            // A file system without hard links: rename, which replaces silently, so look first.
            guard [EPERM, EOPNOTSUPP, EMLINK, ENOSYS].contains(linkError), lstat(out, &info) != 0,
                rename(temp, out) == 0
            else {
                throw StoreError(
                    .backupFailed,
                    "cannot put the backup at \(out): \(String(cString: strerror(linkError))); "
                        + "nothing was written to \(out).")
            }
        } else {
            unlink(temp)
        }
        placed = true
        try? Self.sync(directory, what: "the directory of the backup", out: out)
        let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int64) ?? nil
        return BackupSummary(
            path: out, bytes: size ?? 0, pages: pages, steps: steps, copySeconds: copySeconds,
            sweeps: counts.sweeps, tasks: counts.tasks, results: counts.results, artifacts: counts.artifacts)
    }

    /// SQLite 3.40.0 to 3.41.0 (Debian 12 has 3.40.1) report "NULL value in T.C" for a NOT NULL
    /// column of a WITHOUT ROWID table whose primary key lists its columns in another order than
    /// the table does (our `task_inputs`), although no row holds a NULL there. Such a line is
    /// ignored only when a scan of the real rows finds no NULL in that column.
    static func isFalseNullReport(_ line: String, _ db: Database) throws -> Bool {
        guard let match = line.wholeMatch(of: #/NULL value in ([a-z_]+)\.([a-z_]+)/#) else { return false }
        let table = String(match.1), column = String(match.2)
        let columns = try Row.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?)", arguments: [table])
            .map { $0[0] as String }
        guard columns.contains(column) else { return false }
        // typeof() reads each stored value; `IS NULL` on a NOT NULL column may be optimized away.
        let nulls = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table) WHERE typeof(\(column)) = 'null'")
        return nulls == 0
    }

    private static func directory(of path: String) -> String {
        let directory = (path as NSString).deletingLastPathComponent
        return directory.isEmpty ? "." : directory
    }

    private static func sync(_ path: String, what: String, out: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw StoreError(
                .backupFailed,
                "cannot open \(what) (\(path)) to sync it: \(String(cString: strerror(errno))); "
                    + "nothing was written to \(out).")
        }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            throw StoreError(
                .backupFailed,
                "cannot sync \(what) (\(path)) to disk: \(String(cString: strerror(errno))); "
                    + "nothing was written to \(out).")
        }
    }
}
