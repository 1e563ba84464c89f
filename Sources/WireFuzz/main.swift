// WireFuzz: every decoder a peer can reach, under libFuzzer (`make fuzz-smoke`, `make fuzz`) or,
// in a plain `swift build`, as a regression runner that replays files through the same harness.
//
// Why the FUZZING build calls `LLVMFuzzerRunDriver` instead of letting libFuzzer own `main`:
// SwiftPM on Linux compiles an executable target's top-level code as `WireFuzz_main` and links
// the product with `--defsym main=WireFuzz_main` (so that test targets can link the module).
// `-sanitize=fuzzer` links libclang_rt.fuzzer, whose `main` the defsym silently overrides: the
// binary links and runs our top-level code, never the fuzzer. `-parse-as-library` does not help:
// without top-level code there is no `WireFuzz_main` and the link fails ("undefined symbol
// 'WireFuzz_main' referenced in expression"). So the top-level code hands control to
// `LLVMFuzzerRunDriver`, libFuzzer's entry point for programs that have their own `main`, with
// the same callback libFuzzer would call. It is declared with `@_extern(c)` (there is no header
// to import; the FUZZING build passes `-enable-experimental-feature Extern`).
//
// The FUZZING build must run with SWIFT_BACKTRACE=enable=no: otherwise the Swift runtime's
// backtracer owns SIGILL (what a Swift trap raises), libFuzzer leaves an installed handler
// alone, and a crash prints a Swift backtrace but writes no crash-… input. The Makefile sets it.

import Foundation

#if FUZZING

    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
        Harness.testOneInput(UnsafeBufferPointer(start: data, count: size))
        return 0
    }

    @_extern(c, "LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
    ) -> CInt

    // libFuzzer always passes a buffer it allocated (`new uint8_t[size]`), never null.
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, fuzz))

#else

    exit(Replay.main(Array(CommandLine.arguments.dropFirst())))

#endif
