import ArgumentParser

struct ResultsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "results", abstract: "(being built)")
    func run() async throws { throw ValidationError("`sparsegrid results` is not built yet") }
}
