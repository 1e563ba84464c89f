import ArgumentParser

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "worker", abstract: "(being built)")
    func run() async throws { throw ValidationError("`sparsegrid worker` is not built yet") }
}
