import Foundation

/// Hands the heap's free memory back to the system after the coordinator's two big transient
/// allocations: a launch's end (the sweep's rows read back to seed the scheduler) and a restart's
/// restore (every task read). glibc keeps freed memory for reuse, so without this the resident
/// size stays at the peak for good: 1.8 GB after restarting on a million tasks, of which the
/// scheduler holds a tenth (bench/RESULTS.md). `malloc_trim` is looked up at run time (Swift's
/// Glibc module leaves out malloc.h); where there is none this does nothing.
enum MemoryTrim {
    private typealias Trim = @convention(c) (Int) -> Int32

    private static let trim: Trim? = {
        #if os(Linux)
            guard let address = dlsym(dlopen(nil, RTLD_NOW), "malloc_trim") else { return nil }
            return unsafeBitCast(address, to: Trim.self)
        #else
            return nil
        #endif
    }()

    /// Returns free heap memory to the system (tens of milliseconds for a heap of gigabytes).
    static func release() { _ = trim?(0) }
}
