import ArgumentParser

@main
struct SparseGrid: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sparsegrid",
        abstract: "Run model × sparsity-method sweeps on local or remote workers and compare the results.",
        discussion: """
            A sweep spec (YAML, see sweeps/) expands into tasks; a coordinator hands them to \
            workers over ZeroMQ; every metric lands in one SQLite database under the state \
            directory (default ./.sparsegrid), from which `results` and `report` read.

            Quick start:  sparsegrid run sweeps/smoke.yaml --workers 2

            Commands that act on one sweep (results, report, cancel, retry) take its name as \
            an argument or with --sweep NAME. Commands that talk to a coordinator (launch, \
            status, cancel, retry, dashboard) find the one running on --state DIR, or take its \
            address with --coordinator ADDR.

            Browse a state directory's sweeps (finished, or live from a coordinator started \
            without --http):  sparsegrid dashboard --state DIR
            """,
        version: sparsegridVersion,
        subcommands: [
            RunCommand.self, ValidateCommand.self, CoordinatorCommand.self, LaunchCommand.self,
            WorkerCommand.self, StatusCommand.self, ResultsCommand.self, ReportCommand.self,
            CancelCommand.self, RetryCommand.self, DashboardCommand.self, KeygenCommand.self, BackupCommand.self,
        ]
    )
}
