import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Starting an engine with `posix_spawn`, so that the child gets exactly what it should:
/// a session (and process group) of its own, so the worker can signal the whole group; an
/// empty signal mask and default dispositions, whatever the worker blocks or ignores (its
/// ServiceGroup ignores SIGTERM/SIGINT; a thread may block them); stdin from /dev/null (a
/// pipe from the worker for a long-lived `serve` engine),
/// stdout and stderr on the given pipes, and no other descriptor of the worker.
enum Spawn {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts `executable` (an absolute path) with `arguments` (argv[1…]), `environment` and
    /// `directory` as its working directory. Returns its pid, which is also its process group
    /// id and session id.
    static func start(
        executable: String, arguments: [String], environment: [String: String], directory: String,
        stdout: Int32, stderr: Int32, stdin: Int32? = nil
    ) throws -> pid_t {
        #if os(Linux)
            var actions = posix_spawn_file_actions_t()
            var attributes = posix_spawnattr_t()
        #else
            var actions: posix_spawn_file_actions_t? = nil
            var attributes: posix_spawnattr_t? = nil
        #endif
        try check(posix_spawn_file_actions_init(&actions), "posix_spawn_file_actions_init")
        defer { posix_spawn_file_actions_destroy(&actions) }
        try check(posix_spawnattr_init(&attributes), "posix_spawnattr_init")
        defer { posix_spawnattr_destroy(&attributes) }

        // Signals: nothing blocked, every catchable signal at its default disposition.
        var empty = sigset_t()
        sigemptyset(&empty)
        try check(posix_spawnattr_setsigmask(&attributes, &empty), "posix_spawnattr_setsigmask")
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in 1..<32 where signal != SIGKILL && signal != SIGSTOP { sigaddset(&defaults, Int32(signal)) }
        try check(posix_spawnattr_setsigdefault(&attributes, &defaults), "posix_spawnattr_setsigdefault")
        var flags = Int32(POSIX_SPAWN_SETSIGMASK) | Int32(POSIX_SPAWN_SETSIGDEF) | setsidFlag
        #if !os(Linux)
            flags |= Int32(POSIX_SPAWN_CLOEXEC_DEFAULT)  // Darwin: only the descriptors named below survive
        #endif
        try check(posix_spawnattr_setflags(&attributes, Int16(flags)), "posix_spawnattr_setflags")

        // Descriptors: 0 from /dev/null (or the given pipe: `serve`), 1 and 2 onto the pipes,
        // everything else closed.
        if let stdin {
            try check(posix_spawn_file_actions_adddup2(&actions, stdin, 0), "adddup2 stdin")
        } else {
            try check(posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0), "addopen /dev/null")
        }
        try check(posix_spawn_file_actions_adddup2(&actions, stdout, 1), "adddup2 stdout")
        try check(posix_spawn_file_actions_adddup2(&actions, stderr, 2), "adddup2 stderr")
        try addChdir(&actions, directory)
        #if os(Linux)
            if let closeFrom = LibC.closeFrom {
                try check(closeFrom(&actions, 3), "posix_spawn_file_actions_addclosefrom_np")
            } else {
                markEverythingCloseOnExec()
            }
        #endif

        let argv = [executable] + arguments
        let envp = environment.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let status = withCStrings(argv) { argv in
            withCStrings(envp) { envp in
                posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
            }
        }
        guard status == 0 else { throw Failure(description: String(cString: strerror(status))) }
        return pid
    }

    /// A pipe whose two ends are close-on-exec and numbered 3 or more (so a `dup2` onto 1 or 2
    /// in the child never meets an end that already has that number).
    static func pipe() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        #if os(Linux)
            let made = LibC.pipe2.map { $0(&ends, O_CLOEXEC) } ?? Glibc.pipe(&ends)
        #else
            let made = Darwin.pipe(&ends)
        #endif
        guard made == 0 else { throw Failure(description: "pipe: \(String(cString: strerror(errno)))") }
        for i in 0..<2 {
            // F_DUPFD_CLOEXEC: a copy numbered 3 or more, close-on-exec from its first moment.
            let moved = fcntl(ends[i], F_DUPFD_CLOEXEC, 3)
            guard moved >= 0 else {
                close(ends[0]); close(ends[1])
                throw Failure(description: "fcntl: \(String(cString: strerror(errno)))")
            }
            close(ends[i])
            ends[i] = moved
        }
        return (ends[0], ends[1])
    }

    private static func check(_ status: Int32, _ what: String) throws {
        guard status == 0 else { throw Failure(description: "\(what): \(String(cString: strerror(status)))") }
    }

    #if os(Linux)
        /// glibc's POSIX_SPAWN_SETSID (a GNU extension Swift's Glibc module does not import).
        private static let setsidFlag: Int32 = 0x80

        private static func addChdir(_ actions: inout posix_spawn_file_actions_t, _ directory: String) throws {
            guard let addChdir = LibC.addChdir else {
                throw Failure(
                    description: "this C library has no posix_spawn_file_actions_addchdir_np "
                        + "(glibc 2.29 or newer has)")
            }
            try check(addChdir(&actions, directory), "posix_spawn_file_actions_addchdir_np \(directory)")
        }

        /// Without `addclosefrom_np`: every descriptor this process has open becomes close-on-exec.
        private static func markEverythingCloseOnExec() {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
            for fd in names.compactMap({ Int32($0) }) where fd > 2 {
                let flags = fcntl(fd, F_GETFD)
                if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
            }
        }
    #else
        private static let setsidFlag = Int32(POSIX_SPAWN_SETSID)

        private static func addChdir(_ actions: inout posix_spawn_file_actions_t?, _ directory: String) throws {
            try check(posix_spawn_file_actions_addchdir_np(&actions, directory), "posix_spawn_file_actions_addchdir_np")
        }
    #endif

    /// Calls `body` with a NULL-terminated C array of copies of `strings`.
    private static func withCStrings<R>(
        _ strings: [String],
        _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R
    ) -> R {
        let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
        defer { for p in pointers { free(p) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

#if os(Linux)
    /// glibc functions behind _GNU_SOURCE, which Swift's Glibc module does not define: looked up
    /// at run time (Debian 12's glibc 2.36 has them all).
    private enum LibC {
        typealias Actions = UnsafeMutablePointer<posix_spawn_file_actions_t>
        typealias AddChdir = @convention(c) (Actions, UnsafePointer<CChar>) -> Int32
        typealias AddCloseFrom = @convention(c) (Actions, Int32) -> Int32
        typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32

        nonisolated(unsafe) private static let handle = dlopen(nil, RTLD_NOW)

        private static func symbol<T>(_ name: String, as: T.Type) -> T? {
            guard let address = dlsym(handle, name) else { return nil }
            return unsafeBitCast(address, to: T.self)
        }

        static let addChdir = symbol("posix_spawn_file_actions_addchdir_np", as: AddChdir.self)
        static let closeFrom = symbol("posix_spawn_file_actions_addclosefrom_np", as: AddCloseFrom.self)
        static let pipe2 = symbol("pipe2", as: Pipe2.self)
    }
#endif
