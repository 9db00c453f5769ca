/**
 * Finding the start of a conversation. When a host connects, the byte stream
 * may begin with leftovers meant for an earlier host (frames in flight when it
 * left). The agent answers our HELLO with our nonce, so we skip everything
 * before the first well-formed HELLO frame that carries it.
 */
import * as Either from "effect/Either"
import { FieldKey, FRAME_HEADER_BYTES, FRAME_MAGIC, MessageType } from "./constants.js"
import { decodeFields } from "./fields.js"

const MAX_HELLO_PAYLOAD_BYTES = 4096

export type HuntResult =
  | { readonly _tag: "Found"; readonly offset: number }
  | { readonly _tag: "NeedMore"; readonly discardable: number }

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && a.every((x, i) => x === b[i])

export const huntHello = (bytes: Uint8Array, nonce: Uint8Array): HuntResult => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let i = 0; i + FRAME_HEADER_BYTES <= bytes.byteLength; i++) {
    if (view.getUint16(i) !== FRAME_MAGIC || bytes[i + 2] !== MessageType.HELLO || view.getUint32(i + 4) !== 0) continue
    const length = view.getUint32(i + 8)
    // A real HELLO is a few dozen bytes; a claim of more is garbage, and waiting
    // for it would stall the handshake until the boot timeout.
    if (length > MAX_HELLO_PAYLOAD_BYTES) continue
    // A candidate whose payload has not fully arrived: keep everything from here.
    if (i + FRAME_HEADER_BYTES + length > bytes.byteLength) return { _tag: "NeedMore", discardable: i }
    const payload = bytes.subarray(i + FRAME_HEADER_BYTES, i + FRAME_HEADER_BYTES + length)
    const fields = decodeFields(payload)
    if (Either.isRight(fields)) {
      const echoed = fields.right.bytes(FieldKey.NONCE)
      if (echoed && sameBytes(echoed, nonce)) return { _tag: "Found", offset: i }
    }
  }
  // Keep a tail that could still be the start of a header.
  return { _tag: "NeedMore", discardable: Math.max(0, bytes.byteLength - (FRAME_HEADER_BYTES - 1)) }
}
