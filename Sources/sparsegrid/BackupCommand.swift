import ArgumentParser
import Foundation
import Store

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the state database consistently, also while a coordinator runs and writes.",
        discussion: """
            Uses SQLite's online backup: the copy is one committed state of <state>/sparsegrid.db, \
            taken in steps without stopping the coordinator. It is written next to OUT, checked with \
            PRAGMA integrity_check, and only then renamed to OUT (mode 0600); OUT must not exist.

            The database is what a restore needs; after the backup, also copy <state>/artifacts/ \
            (checkpoints that later stages read) and keep your CURVE keys and token files. To restore: \
            stop the coordinator, put the copy at <state>/sparsegrid.db, remove sparsegrid.db-wal and \
            sparsegrid.db-shm, start the coordinator; tasks that finished after the backup run again. \
            See README, "Backups".

              sparsegrid backup --state /srv/sparsegrid /backups/sparsegrid-$(date +%F).db
            """)

    @Option(name: .long, help: "State directory whose database to copy.")
    var state: String = defaultStateDirectory

    @Option(
        name: .customLong("pages-per-step"),
        help: "Database pages (4 KiB each) copied per step of the online backup.")
    var pagesPerStep: Int = Int(SweepStore.backupPagesPerStep)

    @Flag(name: .long, help: "Print only errors.")
    var quiet = false

    @Argument(help: "The backup file to create (must not exist).")
    var out: String

    func validate() throws {
        guard (1...1_000_000).contains(pagesPerStep) else {
            throw ValidationError("--pages-per-step must be between 1 and 1000000 (got \(pagesPerStep)).")
        }
    }

    func run() async throws {
        try await userFacing {
            let database = databasePath(state: state)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: state, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                throw UserError(
                    "no sparsegrid state directory at \(state): start a coordinator there first "
                        + "(`sparsegrid coordinator --state \(state)` or `sparsegrid run SPEC --state \(state)`), "
                        + "or pass --state DIR with the directory it used.")
            }
            guard FileManager.default.fileExists(atPath: database) else {
                throw UserError(
                    "no sparsegrid database at \(database): start a coordinator on \(state) first "
                        + "(`sparsegrid coordinator --state \(state)` or `sparsegrid run SPEC --state \(state)`), "
                        + "or pass --state DIR with the directory it used.")
            }
            let store = try SweepStore.openReadOnly(path: database)
            // Progress on stderr for big databases only: a line per tenth.
            var shownTenth = 0
            let summary = try store.backup(to: out, pagesPerStep: Int32(pagesPerStep)) { copied, total in
                guard !quiet, total >= 16_384, total > 0 else { return }
                let tenth = copied * 10 / total
                if tenth > shownTenth, tenth < 10 {
                    shownTenth = tenth
                    printErr("backup: \(tenth * 10)% (\(copied) of \(total) pages)")
                }
            }
            guard !quiet else { return }
            let size = String(format: "%.1f MiB", Double(summary.bytes) / 1_048_576)
            let took = String(format: "%.2f s", summary.copySeconds)
            print(
                "backed up \(database) to \(summary.path): \(size), \(summary.sweeps) sweep(s), "
                    + "\(summary.tasks) task(s), \(summary.results) result(s), integrity ok "
                    + "(copied in \(took), \(summary.steps) step(s))")
            if summary.artifacts > 0 {
                print(
                    "it names \(summary.artifacts) artifact(s): copy \(state)/artifacts/ too, now (after the "
                        + "database), e.g. rsync -a --exclude partial/ \(state)/artifacts/ BACKUP-DIR/artifacts/")
            }
        }
    }
}
