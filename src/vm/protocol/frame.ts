/**
 * Frames: pure encode and incremental decode (header layout in
 * guest/agent/protocol.h). Sizes are checked on both paths.
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import { FRAME_HEADER_BYTES, FRAME_MAGIC, MAX_FRAME_PAYLOAD_BYTES } from "./constants.js"

export interface Frame {
  readonly type: number
  readonly flags: number
  readonly stream: number
  readonly payload: Uint8Array
}

export class FrameTooLarge extends Data.TaggedError("FrameTooLarge")<{ readonly length: number }> {
  override get message() {
    return `frame payload of ${this.length} bytes exceeds the ${MAX_FRAME_PAYLOAD_BYTES}-byte limit`
  }
}

export class BadFrameMagic extends Data.TaggedError("BadFrameMagic")<{ readonly found: number }> {
  override get message() {
    return `bad frame magic 0x${this.found.toString(16).padStart(4, "0")}`
  }
}

export type FrameError = FrameTooLarge | BadFrameMagic

export const encodeFrame = (frame: Frame): Either.Either<Uint8Array, FrameTooLarge> => {
  const length = frame.payload.byteLength
  if (length > MAX_FRAME_PAYLOAD_BYTES) return Either.left(new FrameTooLarge({ length }))
  const out = new Uint8Array(FRAME_HEADER_BYTES + length)
  const view = new DataView(out.buffer)
  view.setUint16(0, FRAME_MAGIC)
  view.setUint8(2, frame.type)
  view.setUint8(3, frame.flags)
  view.setUint32(4, frame.stream)
  view.setUint32(8, length)
  out.set(frame.payload, FRAME_HEADER_BYTES)
  return Either.right(out)
}

/**
 * Accumulates bytes and yields whole frames. Once it has failed it stays
 * failed: a malformed stream cannot be resynchronised safely.
 */
export class FrameDecoder {
  private chunks: Array<Uint8Array> = []
  private buffered = 0
  private failure: FrameError | undefined

  get bufferedBytes(): number {
    return this.buffered
  }

  push(chunk: Uint8Array): Either.Either<ReadonlyArray<Frame>, FrameError> {
    if (this.failure) return Either.left(this.failure)
    if (chunk.byteLength > 0) {
      this.chunks.push(chunk)
      this.buffered += chunk.byteLength
    }
    const frames: Array<Frame> = []
    while (this.buffered >= FRAME_HEADER_BYTES) {
      const header = this.peek(FRAME_HEADER_BYTES)
      const view = new DataView(header.buffer, header.byteOffset, header.byteLength)
      const magic = view.getUint16(0)
      if (magic !== FRAME_MAGIC) return this.fail(new BadFrameMagic({ found: magic }))
      const length = view.getUint32(8)
      if (length > MAX_FRAME_PAYLOAD_BYTES) return this.fail(new FrameTooLarge({ length }))
      if (this.buffered < FRAME_HEADER_BYTES + length) break
      const bytes = this.take(FRAME_HEADER_BYTES + length)
      frames.push({
        type: view.getUint8(2),
        flags: view.getUint8(3),
        stream: view.getUint32(4),
        payload: bytes.subarray(FRAME_HEADER_BYTES)
      })
    }
    return Either.right(frames)
  }

  private fail(error: FrameError) {
    this.failure = error
    this.chunks = []
    this.buffered = 0
    return Either.left(error)
  }

  /** The first n buffered bytes, without consuming them. */
  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!
    if (first.byteLength >= n) return first.subarray(0, n)
    this.coalesce()
    return this.chunks[0]!.subarray(0, n)
  }

  private take(n: number): Uint8Array {
    const first = this.chunks[0]!
    if (first.byteLength < n) this.coalesce()
    const head = this.chunks[0]!
    const out = head.subarray(0, n)
    if (head.byteLength === n) this.chunks.shift()
    else this.chunks[0] = head.subarray(n)
    this.buffered -= n
    return out
  }

  private coalesce() {
    const all = new Uint8Array(this.buffered)
    let offset = 0
    for (const c of this.chunks) {
      all.set(c, offset)
      offset += c.byteLength
    }
    this.chunks = [all]
  }
}
