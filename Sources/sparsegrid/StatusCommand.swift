import ArgumentParser

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "(being built)")
    func run() async throws { throw ValidationError("`sparsegrid status` is not built yet") }
}
