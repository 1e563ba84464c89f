/// How one fuzzer input becomes the frames of a message, so that the fuzzer controls the frame
/// count and every frame's bytes, and a message's JSON header stays readable in a hex dump:
///
///     byte 0            frame count n (mod 8: 0…7; 0 is the empty message)
///     frames 1…n−1      a 2-byte big-endian length, then that many bytes (fewer if the input ends)
///     frame n           the rest of the input
///
/// An input that ends early yields fewer frames. `encode` is the inverse, used to write seeds.
enum FuzzInput {
    static let maxFrames = 7

    static func frames(_ data: UnsafeBufferPointer<UInt8>) -> [[UInt8]] {
        guard let first = data.first else { return [] }
        let count = Int(first) % (maxFrames + 1)
        var frames: [[UInt8]] = []
        var i = 1
        while frames.count < count, i <= data.count {
            if frames.count == count - 1 {
                frames.append(Array(data[i...]))
                break
            }
            guard i + 2 <= data.count else { break }
            let length = Int(data[i]) << 8 | Int(data[i + 1])
            i += 2
            let end = min(i + length, data.count)
            frames.append(Array(data[i..<end]))
            i = end
        }
        return frames
    }

    static func encode(_ frames: [[UInt8]]) -> [UInt8] {
        precondition(frames.count <= maxFrames, "a fuzz input holds at most \(maxFrames) frames")
        var out: [UInt8] = [UInt8(frames.count)]
        for (k, frame) in frames.enumerated() {
            if k < frames.count - 1 {
                precondition(frame.count <= 0xFFFF, "a frame before the last is at most 65535 bytes")
                out += [UInt8(frame.count >> 8), UInt8(frame.count & 0xFF)]
            }
            out += frame
        }
        return out
    }
}
