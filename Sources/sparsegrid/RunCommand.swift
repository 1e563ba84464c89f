import ArgumentParser

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "(being built)")
    func run() async throws { throw ValidationError("`sparsegrid run` is not built yet") }
}
