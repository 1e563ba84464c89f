import ArgumentParser

struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "retry", abstract: "(being built)")
    func run() async throws { throw ValidationError("`sparsegrid retry` is not built yet") }
}
