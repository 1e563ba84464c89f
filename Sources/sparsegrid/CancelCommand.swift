import ArgumentParser

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "(being built)")
    func run() async throws { throw ValidationError("`sparsegrid cancel` is not built yet") }
}
