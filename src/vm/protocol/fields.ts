/**
 * Field lists, the payload of control messages: u16 key, u32 length, value.
 * Integers are 8-byte big-endian, strings UTF-8 without NUL.
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import { FIELD_HEADER_BYTES } from "./constants.js"

export type FieldValue = string | bigint | number | boolean | Uint8Array
export type FieldList = ReadonlyArray<readonly [key: number, value: FieldValue]>

export class MalformedFields extends Data.TaggedError("MalformedFields")<{ readonly offset: number }> {
  override get message() {
    return `malformed field list at byte ${this.offset}`
  }
}

const utf8 = new TextEncoder()

const valueBytes = (value: FieldValue): Uint8Array => {
  if (value instanceof Uint8Array) return value
  if (typeof value === "string") return utf8.encode(value)
  const out = new Uint8Array(8)
  const n = typeof value === "boolean" ? (value ? 1n : 0n) : BigInt(value)
  new DataView(out.buffer).setBigInt64(0, n)
  return out
}

export const encodeFields = (fields: FieldList): Uint8Array => {
  const parts = fields.map(([key, value]) => [key, valueBytes(value)] as const)
  const total = parts.reduce((n, [, v]) => n + FIELD_HEADER_BYTES + v.byteLength, 0)
  const out = new Uint8Array(total)
  const view = new DataView(out.buffer)
  let offset = 0
  for (const [key, v] of parts) {
    view.setUint16(offset, key)
    view.setUint32(offset + 2, v.byteLength)
    out.set(v, offset + FIELD_HEADER_BYTES)
    offset += FIELD_HEADER_BYTES + v.byteLength
  }
  return out
}

/** Decoded fields: every value of each key, in order. */
export class Fields {
  constructor(private readonly byKey: ReadonlyMap<number, ReadonlyArray<Uint8Array>>) {}

  bytes(key: number): Uint8Array | undefined {
    return this.byKey.get(key)?.[0]
  }

  all(key: number): ReadonlyArray<Uint8Array> {
    return this.byKey.get(key) ?? []
  }

  /** undefined when absent; NaN when present but not 8 bytes (callers' schemas reject it). */
  int(key: number): number | undefined {
    const v = this.bytes(key)
    if (v === undefined) return undefined
    if (v.byteLength !== 8) return Number.NaN
    return Number(new DataView(v.buffer, v.byteOffset, 8).getBigInt64(0))
  }

  string(key: number): string | undefined {
    const v = this.bytes(key)
    return v === undefined ? undefined : new TextDecoder().decode(v)
  }
}

export const decodeFields = (payload: Uint8Array): Either.Either<Fields, MalformedFields> => {
  const byKey = new Map<number, Array<Uint8Array>>()
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  let offset = 0
  while (offset < payload.byteLength) {
    if (payload.byteLength - offset < FIELD_HEADER_BYTES) return Either.left(new MalformedFields({ offset }))
    const key = view.getUint16(offset)
    const length = view.getUint32(offset + 2)
    const start = offset + FIELD_HEADER_BYTES
    if (length > payload.byteLength - start) return Either.left(new MalformedFields({ offset }))
    const list = byKey.get(key)
    const value = payload.subarray(start, start + length)
    if (list) list.push(value)
    else byKey.set(key, [value])
    offset = start + length
  }
  return Either.right(new Fields(byKey))
}
