import ArgumentParser

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "validate", abstract: "(being built)")
    func run() async throws { throw ValidationError("`sparsegrid validate` is not built yet") }
}
