import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { FRAME_HEADER_BYTES, MAX_FRAME_PAYLOAD_BYTES, MessageType } from "../../src/vm/protocol/constants.js"
import { decodeFields, encodeFields } from "../../src/vm/protocol/fields.js"
import { encodeFrame, FrameDecoder } from "../../src/vm/protocol/frame.js"

const frame = (stream: number, payload: Uint8Array) =>
  Either.getOrThrow(encodeFrame({ type: MessageType.DATA, flags: 1, stream, payload }))

const concat = (...parts: Array<Uint8Array>) => Buffer.concat(parts)

describe("FrameDecoder", () => {
  it("yields frames however the bytes are split", () => {
    const wire = concat(frame(1, new Uint8Array([1, 2, 3])), frame(2, new Uint8Array()), frame(3, new Uint8Array(70_000).fill(7)))
    for (const step of [1, 5, 12, 13, 4096, wire.byteLength]) {
      const decoder = new FrameDecoder()
      const seen: Array<[number, number]> = []
      for (let i = 0; i < wire.byteLength; i += step) {
        const out = Either.getOrThrow(decoder.push(wire.subarray(i, i + step)))
        for (const f of out) seen.push([f.stream, f.payload.byteLength])
      }
      expect(seen).toEqual([[1, 3], [2, 0], [3, 70_000]])
      expect(decoder.bufferedBytes).toBe(0)
    }
  })

  it("rejects a bad magic and stays failed", () => {
    const decoder = new FrameDecoder()
    const bad = new Uint8Array(FRAME_HEADER_BYTES).fill(0x41)
    const first = decoder.push(bad)
    expect(Either.isLeft(first) && first.left._tag).toBe("BadFrameMagic")
    const again = decoder.push(frame(1, new Uint8Array([1])))
    expect(Either.isLeft(again)).toBe(true)
  })

  it("rejects an oversized length from the header alone", () => {
    const header = frame(1, new Uint8Array()).slice(0, FRAME_HEADER_BYTES)
    new DataView(header.buffer).setUint32(8, MAX_FRAME_PAYLOAD_BYTES + 1)
    const result = new FrameDecoder().push(header)
    expect(Either.isLeft(result) && result.left._tag).toBe("FrameTooLarge")
  })

  it("refuses to encode a payload over the limit", () => {
    const result = encodeFrame({ type: MessageType.DATA, flags: 0, stream: 1, payload: new Uint8Array(MAX_FRAME_PAYLOAD_BYTES + 1) })
    expect(Either.isLeft(result)).toBe(true)
    expect(Either.isRight(encodeFrame({ type: MessageType.DATA, flags: 0, stream: 1, payload: new Uint8Array(MAX_FRAME_PAYLOAD_BYTES) }))).toBe(true)
  })
})

describe("fields", () => {
  it("round-trip strings, integers, booleans and repeated keys", () => {
    const bytes = encodeFields([[10, "ls"], [10, "-l"], [13, 30_000], [14, true], [2, new Uint8Array([0, 255])]])
    const fields = Either.getOrThrow(decodeFields(bytes))
    expect(fields.all(10).map((v) => Buffer.from(v).toString())).toEqual(["ls", "-l"])
    expect(fields.int(13)).toBe(30_000)
    expect(fields.int(14)).toBe(1)
    expect([...fields.bytes(2)!]).toEqual([0, 255])
    expect(fields.int(99)).toBeUndefined()
  })

  it("rejects truncated lists", () => {
    const bytes = encodeFields([[10, "hello"]])
    expect(Either.isLeft(decodeFields(bytes.subarray(0, bytes.byteLength - 1)))).toBe(true)
    expect(Either.isLeft(decodeFields(bytes.subarray(0, 3)))).toBe(true)
  })
})
