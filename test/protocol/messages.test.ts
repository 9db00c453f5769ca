import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { FieldKey, MessageType } from "../../src/vm/protocol/constants.js"
import { encodeFields, type FieldList } from "../../src/vm/protocol/fields.js"
import { decodeGuestMessage } from "../../src/vm/protocol/messages.js"
import { huntHello } from "../../src/vm/protocol/hunt.js"
import { encodeFrame } from "../../src/vm/protocol/frame.js"

const control = (type: number, stream: number, fields: FieldList, flags = 0) => ({
  type,
  flags,
  stream,
  payload: encodeFields(fields)
})

describe("decodeGuestMessage", () => {
  it("accepts a well-formed EXIT", () => {
    const msg = decodeGuestMessage(control(MessageType.EXIT, 3, [[FieldKey.EXIT_CODE, 7], [FieldKey.SIGNAL, 0], [FieldKey.TIMED_OUT, false]]))
    expect(Either.getOrThrow(msg)).toEqual({ _tag: "Exit", stream: 3, exitCode: 7, signal: 0, timedOut: false })
  })

  it.each([
    ["an exit code out of range", [[FieldKey.EXIT_CODE, 999]]],
    ["a missing exit code", []],
    ["a timed-out flag that is not 0 or 1", [[FieldKey.EXIT_CODE, 0], [FieldKey.TIMED_OUT, 5]]],
    ["an integer of the wrong width", [[FieldKey.EXIT_CODE, "x"]]]
  ] as const)("rejects an EXIT with %s", (_, fields) => {
    expect(Either.isLeft(decodeGuestMessage(control(MessageType.EXIT, 1, fields as FieldList)))).toBe(true)
  })

  it("rejects output for stdin, unknown types and HELLO off stream 0", () => {
    expect(Either.isLeft(decodeGuestMessage({ type: MessageType.DATA, flags: 0, stream: 1, payload: new Uint8Array() }))).toBe(true)
    expect(Either.isLeft(decodeGuestMessage({ type: 200, flags: 0, stream: 1, payload: new Uint8Array() }))).toBe(true)
    expect(Either.isLeft(decodeGuestMessage(control(MessageType.HELLO, 5, [[FieldKey.GENERATION, 1]])))).toBe(true)
  })

  it("bounds the strings a guest may send", () => {
    const long = "x".repeat(10_000)
    const msg = decodeGuestMessage(control(MessageType.ERROR, 1, [[FieldKey.ERRNO, 2], [FieldKey.STAGE, "exec"], [FieldKey.MESSAGE, long]]))
    expect(Either.isLeft(msg)).toBe(true)
  })
})

describe("huntHello", () => {
  const nonce = new Uint8Array([1, 2, 3, 4])
  const hello = (n: Uint8Array) =>
    Either.getOrThrow(encodeFrame(control(MessageType.HELLO, 0, [[FieldKey.GENERATION, 1], [FieldKey.NONCE, n], [FieldKey.STATE, "ready"]])))

  it("finds our HELLO after stale bytes and a HELLO for someone else", () => {
    const wire = Buffer.concat([Buffer.from("stale output"), hello(new Uint8Array([9])), hello(nonce)])
    const result = huntHello(wire, nonce)
    expect(result).toEqual({ _tag: "Found", offset: wire.byteLength - hello(nonce).byteLength })
  })

  it("keeps a partial candidate and discards what precedes it", () => {
    const frame = hello(nonce)
    const wire = Buffer.concat([Buffer.from("junk"), frame.subarray(0, 20)])
    expect(huntHello(wire, nonce)).toEqual({ _tag: "NeedMore", discardable: 4 })
  })
})
