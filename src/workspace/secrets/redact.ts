/**
 * Replacing a workspace's secret values by `[REDACTED]` in what clients see.
 * Works on bytes (output arrives as bytes and may split a value anywhere, even
 * inside a UTF-8 sequence); a streaming form holds back the few bytes at a
 * chunk's end that could start a value, so an occurrence split across chunks
 * is caught too.
 */
import { REDACTED } from "../../contract/workspace/secrets.js"

const MARK = Buffer.from(REDACTED)

export interface StreamRedactor {
  /** What of `chunk` (after anything held back) is safe to show now. */
  readonly push: (chunk: Uint8Array) => Uint8Array
  /** Whatever is still held back, at the end of the stream. */
  readonly end: () => Uint8Array
}

export interface Redactor {
  /** False when there is nothing to redact: callers may skip the copying. */
  readonly active: boolean
  /** Bytes of the longest value (0 without secrets). */
  readonly longest: number
  readonly bytes: (input: Uint8Array) => Uint8Array
  readonly text: (input: string) => string
  readonly stream: () => StreamRedactor
  /**
   * `window` holds output from `skip` bytes before the part wanted: the part,
   * redacted, with an occurrence that began before it shown as the marker too.
   */
  readonly from: (window: Uint8Array, skip: number) => Uint8Array
  /** How many bytes at the end of `input` could be the start of a value (to hold back from a read). */
  readonly pendingTail: (input: Uint8Array) => number
  /**
   * Where a read of `window` that wants to end at `cut` may end: past a value
   * the cut falls inside, or before the start of one the window ends in the
   * middle of (while more may come), so that no value is ever shown in part.
   */
  readonly safeCut: (window: Uint8Array, cut: number, final: boolean) => number
}

/** The next occurrence of any value at or after `from`: where, and which (the longest wins a tie). */
const nextMatch = (input: Buffer, values: ReadonlyArray<Buffer>, from: number) => {
  let at = -1
  let length = 0
  for (const value of values) {
    const i = input.indexOf(value, from)
    if (i >= 0 && (at < 0 || i < at || (i === at && value.length > length))) {
      at = i
      length = value.length
    }
  }
  return { at, length }
}

/** Each match as [start, end) in `input`, left to right, not overlapping. */
const matches = (input: Buffer, values: ReadonlyArray<Buffer>): Array<readonly [number, number]> => {
  const out: Array<readonly [number, number]> = []
  for (let from = 0;;) {
    const { at, length } = nextMatch(input, values, from)
    if (at < 0) return out
    out.push([at, at + length])
    from = at + length
  }
}

const replaced = (input: Buffer, ranges: ReadonlyArray<readonly [number, number]>, start = 0): Buffer => {
  const parts: Array<Buffer> = []
  let from = start
  for (const [a, b] of ranges) {
    if (b <= start) continue
    if (a > from) parts.push(input.subarray(from, a))
    parts.push(MARK)
    from = b
  }
  parts.push(input.subarray(from))
  return Buffer.concat(parts)
}

export const makeRedactor = (values: ReadonlyArray<string>): Redactor => {
  const secrets = [...new Set(values)].filter((v) => v.length > 0).map((v) => Buffer.from(v, "utf8"))
  const longest = secrets.reduce((n, s) => Math.max(n, s.length), 0)
  const asBuffer = (input: Uint8Array) => Buffer.from(input.buffer, input.byteOffset, input.byteLength)
  const bytes = (input: Uint8Array): Uint8Array =>
    secrets.length === 0 ? input : replaced(asBuffer(input), matches(asBuffer(input), secrets))
  const pendingTail = (input: Uint8Array) => {
    const b = asBuffer(input)
    for (let k = Math.min(longest - 1, b.length); k > 0; k--) {
      const tail = b.subarray(b.length - k)
      if (secrets.some((s) => s.length > k && s.subarray(0, k).equals(tail))) return k
    }
    return 0
  }
  return {
    active: secrets.length > 0,
    longest,
    bytes,
    text: (input) => (secrets.length === 0 ? input : Buffer.from(bytes(Buffer.from(input, "utf8"))).toString("utf8")),
    stream: () => {
      let held: Buffer = Buffer.alloc(0)
      return {
        push: (chunk) => {
          if (secrets.length === 0) return chunk
          const all = Buffer.concat([held, asBuffer(chunk)])
          const ranges = matches(all, secrets)
          // Hold back the longest end that could still become a value (or a longer one),
          // and any match it cuts through.
          let cut = all.length - pendingTail(all)
          for (const [a, b] of ranges) if (a < cut && cut < b) cut = a
          held = Buffer.from(all.subarray(cut))
          return replaced(all.subarray(0, cut), ranges.filter(([, b]) => b <= cut))
        },
        end: () => {
          const rest = held
          held = Buffer.alloc(0)
          return bytes(rest)
        }
      }
    },
    from: (window, skip) => {
      const b = asBuffer(window)
      if (secrets.length === 0) return b.subarray(skip)
      return replaced(b, matches(b, secrets), skip)
    },
    pendingTail,
    safeCut: (window, cut, final) => {
      if (secrets.length === 0) return cut
      const b = asBuffer(window)
      for (const [a, end] of matches(b, secrets)) if (a < cut && cut < end) return end
      const pendingStart = b.length - pendingTail(b)
      return !final && cut > pendingStart ? pendingStart : cut
    }
  }
}

export const NO_SECRETS: Redactor = makeRedactor([])
