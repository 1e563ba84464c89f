import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An engine's artifacts are files it wrote in its attempt's work directory, and nothing else:
/// the worker moves them into its cache and uploads them, so a reported path that leads
/// elsewhere (absolute, `../`, a symbolic link out) would take a file that is not the task's.
enum ArtifactContainment {
    /// The real path (links followed) of the artifact the engine reported as `path` (relative
    /// to `workdir`, or absolute), if it is a regular file inside `workdir`; else throws with
    /// the reason. Nothing is opened: the check is on names and `lstat` only.
    static func resolve(name: String, path: String, workdir: String) throws -> String {
        guard let root = realPath(workdir) else {
            throw WorkerError("the attempt's work directory \(workdir) is gone")
        }
        let reported = path.hasPrefix("/") ? path : "\(workdir)/\(path)"
        let shown = "artifact \(name.prefix(64)) (\(path.prefix(200)))"
        guard let real = realPath(reported) else {
            throw WorkerError("\(shown) does not exist")
        }
        guard real.hasPrefix(root.hasSuffix("/") ? root : root + "/") else {
            throw WorkerError(
                "\(shown) is outside the attempt's work directory; an engine's artifacts are files it "
                    + "wrote under --workdir")
        }
        var info = stat()
        guard lstat(real, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw WorkerError("\(shown) is not a regular file")
        }
        return real
    }

    /// `realpath(3)`: the absolute path with every link, `.` and `..` resolved; nil if it
    /// does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
