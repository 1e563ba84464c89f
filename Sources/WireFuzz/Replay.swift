import Foundation
import Wire

/// The plain build's program: replays files (a crash input, a corpus) through the harness, or
/// writes the seed corpus.
enum Replay {
    static let usage = """
        usage: WireFuzz PATH…              replay every file (directories recursively) through the harness
               WireFuzz --write-seeds DIR  write the seed corpus into DIR (existing seeds are overwritten)
        The libFuzzer build (make fuzz-build) takes libFuzzer's arguments instead.
        """

    static func main(_ arguments: [String]) -> Int32 {
        if arguments.isEmpty || arguments.contains("-h") || arguments.contains("--help") {
            print(usage)
            return arguments.isEmpty ? 2 : 0
        }
        if arguments.first == "--write-seeds" {
            guard arguments.count == 2 else {
                printError(usage)
                return 2
            }
            return writeSeeds(into: arguments[1])
        }
        var files: [String] = []
        for path in arguments {
            guard let found = regularFiles(at: path) else {
                printError("WireFuzz: \(path) is neither a file nor a directory")
                return 2
            }
            files += found
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                printError("WireFuzz: cannot read \(file)")
                return 1
            }
            // A trap here names the file first, so a failing replay says which input it was.
            printError("replaying \(file)")
            Array(data).withUnsafeBufferPointer(Harness.testOneInput)
        }
        print("WireFuzz: replayed \(files.count) input(s) without a crash")
        return 0
    }

    static func regularFiles(at path: String) -> [String]? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return nil }
        guard isDirectory.boolValue else { return [path] }
        let enumerator = FileManager.default.enumerator(atPath: path)
        var files: [String] = []
        while let relative = enumerator?.nextObject() as? String {
            let full = (path as NSString).appendingPathComponent(relative)
            var dir: ObjCBool = false
            if FileManager.default.fileExists(atPath: full, isDirectory: &dir), !dir.boolValue { files.append(full) }
        }
        return files.sorted()
    }

    static func writeSeeds(into directory: String) -> Int32 {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let seeds = try Seeds.all()
            // A valid message that the framing refuses would not seed the decoders behind it.
            for seed in try Seeds.valid() {
                _ = try Codec.parse(seed.frames, maxPayloadBytes: artifactChunkBytes)
            }
            var names = Set<String>()
            for seed in seeds {
                precondition(names.insert(seed.name).inserted, "two seeds are named \(seed.name)")
                let path = (directory as NSString).appendingPathComponent(seed.name)
                let bytes = FuzzInput.encode(seed.frames)
                // Each seed must come back out of the input format as the frames it went in as.
                let back = bytes.withUnsafeBufferPointer(FuzzInput.frames)
                precondition(back == seed.frames, "seed \(seed.name) does not survive FuzzInput.encode/frames")
                guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
                    printError("WireFuzz: cannot write \(path)")
                    return 1
                }
            }
            print("WireFuzz: wrote \(seeds.count) seeds into \(directory)")
            return 0
        } catch {
            printError("WireFuzz: cannot write the seeds: \(error)")
            return 1
        }
    }

    static func printError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
