import ArgumentParser

struct LaunchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "launch", abstract: "(being built)")
    func run() async throws { throw ValidationError("`sparsegrid launch` is not built yet") }
}
