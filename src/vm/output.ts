/**
 * A command's output held in memory, up to a cap. Bytes past the cap are
 * counted but not kept, and the result says so.
 */
export class CappedOutput {
  private readonly chunks: Array<Uint8Array> = []
  private kept = 0
  total = 0

  constructor(readonly cap: number) {}

  push(bytes: Uint8Array) {
    this.total += bytes.byteLength
    const room = this.cap - this.kept
    if (room <= 0) return
    const part = bytes.byteLength <= room ? bytes : bytes.subarray(0, room)
    // Copy: a view would pin the whole socket read buffer it came from.
    this.chunks.push(part.slice())
    this.kept += part.byteLength
  }

  get truncated() {
    return this.total > this.kept
  }

  bytes(): Uint8Array {
    return Buffer.concat(this.chunks, this.kept)
  }

  text(): string {
    return Buffer.concat(this.chunks, this.kept).toString("utf8")
  }
}
