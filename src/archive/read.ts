/**
 * A streaming tar reader: ustar, pax (local `x` headers; global `g` headers
 * are read and ignored) and GNU long names/links (`L`, `K`), with octal or
 * base-256 numbers. Entry contents are handed out chunk by chunk and never
 * held in memory.
 *
 * Hand-written rather than a dependency: the usual library, tar-stream 3,
 * brings streamx, b4a, fast-fifo and bare-fs along; layer extraction needs a
 * pull-based reader that fits Effect's Stream (backpressure comes from the
 * consumer pulling), strict bounds on pax and long-name records, and a typed
 * error for every malformed header. That is a couple of hundred lines.
 *
 * It reads OCI layers (src/oci/flatten.ts) and host archives for imports
 * (./checked.ts); it makes nothing safe itself: that is ./policy.ts.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { InvalidTar } from "./errors.js"

export type TarEntryType =
  | "file"
  | "hardlink"
  | "symlink"
  | "character-device"
  | "block-device"
  | "directory"
  | "fifo"

export interface TarEntry {
  /** The name as stored (pax `path`, GNU long name, or ustar prefix + name); not yet made safe. */
  readonly path: string
  readonly type: TarEntryType
  /** Permission bits including setuid, setgid and sticky (`& 0o7777`). */
  readonly mode: number
  readonly uid: number
  readonly gid: number
  /** Bytes of content that follow (0 for all but regular files). */
  readonly size: number
  /** Seconds since the epoch, possibly fractional (pax). */
  readonly mtime: number
  /** Target of a symlink or hard link. */
  readonly linkname: string
}

export interface TarEntryBody<SE, SR> {
  /** Hand each chunk of the entry's content to `f`, in order. Content not read is skipped. */
  readonly forEachChunk: <E, R>(
    f: (chunk: Uint8Array) => Effect.Effect<void, E, R>
  ) => Effect.Effect<void, E | SE | InvalidTar, R | SR>
}

const BLOCK = 512
const MAX_PAX_BYTES = 1024 * 1024
const MAX_LONG_NAME_BYTES = 64 * 1024

/** Buffers chunks pulled from a stream so headers can be read whole. */
class ByteReader<E, R> {
  private chunks: Array<Uint8Array> = []
  length = 0
  ended = false

  constructor(private readonly pull: Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<E>, R>) {}

  /** Pull until at least `n` bytes are buffered or the stream has ended. */
  fill(n: number): Effect.Effect<void, E, R> {
    return Effect.whileLoop({
      while: () => this.length < n && !this.ended,
      body: () =>
        Effect.matchEffect(this.pull, {
          onFailure: (error) =>
            Option.isNone(error) ? Effect.sync(() => void (this.ended = true)) : Effect.fail(error.value),
          onSuccess: (chunk) =>
            Effect.sync(() => {
              for (const c of Chunk.toReadonlyArray(chunk)) {
                if (c.byteLength === 0) continue
                this.chunks.push(c)
                this.length += c.byteLength
              }
            })
        }),
      step: () => undefined
    })
  }

  /** Up to `n` buffered bytes, without copying when a chunk boundary allows. */
  takeUpTo(n: number): Uint8Array {
    const first = this.chunks[0]
    if (!first) return new Uint8Array()
    if (first.byteLength <= n) {
      this.chunks.shift()
      this.length -= first.byteLength
      return first
    }
    this.chunks[0] = first.subarray(n)
    this.length -= n
    return first.subarray(0, n)
  }

  /** Exactly `n` bytes (the caller has filled at least that many). */
  take(n: number): Uint8Array {
    const first = this.takeUpTo(n)
    if (first.byteLength === n) return first
    const out = new Uint8Array(n)
    out.set(first, 0)
    let offset = first.byteLength
    while (offset < n) {
      const next = this.takeUpTo(n - offset)
      out.set(next, offset)
      offset += next.byteLength
    }
    return out
  }
}

const decoder = new TextDecoder()

const cString = (bytes: Uint8Array) => {
  const end = bytes.indexOf(0)
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end))
}

/** An octal or base-256 (GNU, leading 0x80) number; `undefined` if malformed. */
const parseNumber = (field: Uint8Array): number | undefined => {
  const first = field[0] ?? 0
  if (first & 0x80) {
    if (first === 0xff) return undefined // negative
    let value = first & 0x7f
    for (const byte of field.subarray(1)) {
      value = value * 256 + byte
      if (value > Number.MAX_SAFE_INTEGER) return undefined
    }
    return value
  }
  const text = decoder.decode(field).replace(/\0.*$/s, "").trim()
  if (text === "") return 0
  if (!/^[0-7]+$/.test(text)) return undefined
  const value = parseInt(text, 8)
  return Number.isSafeInteger(value) ? value : undefined
}

const isZeroBlock = (block: Uint8Array) => block.every((b) => b === 0)

/** Whether a header block's stored checksum is right (signed or unsigned, as readers accept). */
const checksumMatches = (header: Uint8Array) => {
  const stored = parseNumber(header.subarray(148, 156))
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : header[i]!
    unsigned += byte
    signed += byte > 127 ? byte - 256 : byte
  }
  return stored === unsigned || stored === signed
}

/**
 * Whether a 512-byte block opens a tar archive: a header whose checksum is
 * right, or a zero block (an empty archive is its end marker alone). Used to
 * tell a tar file by its content.
 */
export const isTarStart = (block: Uint8Array): boolean =>
  block.byteLength === BLOCK && (isZeroBlock(block) || checksumMatches(block))

/** pax records: `<length> <key>=<value>\n`. */
const parsePax = (data: Uint8Array, invalid: (detail: string) => InvalidTar) => {
  const records: Record<string, string> = {}
  let pos = 0
  while (pos < data.byteLength) {
    if (data[pos] === 0) break // padding some writers leave
    const space = data.indexOf(0x20, pos)
    if (space < 0) return Effect.fail(invalid("malformed pax record"))
    const length = Number(decoder.decode(data.subarray(pos, space)))
    if (!Number.isSafeInteger(length) || length <= space - pos || pos + length > data.byteLength || data[pos + length - 1] !== 0x0a) {
      return Effect.fail(invalid("malformed pax record"))
    }
    const record = decoder.decode(data.subarray(space + 1, pos + length - 1))
    const eq = record.indexOf("=")
    if (eq <= 0) return Effect.fail(invalid("malformed pax record"))
    records[record.slice(0, eq)] = record.slice(eq + 1)
    pos += length
  }
  return Effect.succeed(records)
}

const ENTRY_TYPES: Readonly<Record<string, TarEntryType>> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "character-device",
  "4": "block-device",
  "5": "directory",
  "6": "fifo"
}

/**
 * Read the tar archive carried by `source`, calling `onEntry` for each entry
 * in order. `label` names the archive in errors.
 */
export const readTar = <SE, SR, E, R>(
  source: Stream.Stream<Uint8Array, SE, SR>,
  label: string,
  onEntry: (entry: TarEntry, body: TarEntryBody<SE, SR>) => Effect.Effect<void, E, R>
): Effect.Effect<void, SE | E | InvalidTar, SR | R> =>
  Effect.scoped(Effect.gen(function*() {
    const reader = new ByteReader(yield* Stream.toPull(source))
    const invalid = (detail: string) => new InvalidTar({ archive: label, detail })
    const truncated = () => invalid("unexpected end of archive")

    const readExact = (n: number) =>
      Effect.gen(function*() {
        yield* reader.fill(n)
        if (reader.length < n) return yield* truncated()
        return reader.take(n)
      })

    const skip = (n: number) =>
      Effect.gen(function*() {
        let left = n
        while (left > 0) {
          yield* reader.fill(1)
          if (reader.length === 0) return yield* truncated()
          left -= reader.takeUpTo(left).byteLength
        }
      })

    const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK

    /** The content of a metadata entry (pax, long name), bounded. */
    const readMeta = (size: number, limit: number, what: string) =>
      Effect.gen(function*() {
        if (size > limit) return yield* invalid(`${what} of ${size} bytes is larger than ${limit}`)
        const data = yield* readExact(size)
        yield* skip(padding(size))
        return data
      })

    let pax: Record<string, string> = {}
    let longName: string | undefined
    let longLink: string | undefined
    /** Metadata bytes read since the last real entry: one entry's worth at most, however many headers carry it. */
    let metaBytes = 0
    const countMeta = (size: number) => {
      metaBytes += size
      return metaBytes > MAX_PAX_BYTES
        ? invalid(`more than ${MAX_PAX_BYTES} bytes of pax and long-name headers before one entry`)
        : undefined
    }

    for (;;) {
      yield* reader.fill(BLOCK)
      if (reader.length === 0) return // no end-of-archive blocks; tolerated
      if (reader.length < BLOCK) return yield* truncated()
      const header = reader.take(BLOCK)
      if (isZeroBlock(header)) return
      if (!checksumMatches(header)) return yield* invalid("header checksum mismatch (not a tar archive, or corrupted)")

      const typeflag = String.fromCharCode(header[156]!)
      const headerSize = parseNumber(header.subarray(124, 136))
      if (headerSize === undefined) return yield* invalid("malformed size field")

      if (typeflag === "x" || typeflag === "g" || typeflag === "L" || typeflag === "K") {
        const tooMuch = countMeta(headerSize)
        if (tooMuch) return yield* tooMuch
      }
      if (typeflag === "x" || typeflag === "g") {
        const data = yield* readMeta(headerSize, MAX_PAX_BYTES, "pax header")
        const records = yield* parsePax(data, invalid)
        if (typeflag === "x") pax = { ...pax, ...records }
        continue
      }
      if (typeflag === "L" || typeflag === "K") {
        const name = cString(yield* readMeta(headerSize, MAX_LONG_NAME_BYTES, "GNU long name"))
        if (typeflag === "L") longName = name
        else longLink = name
        continue
      }

      const isUstar = decoder.decode(header.subarray(257, 263)) === "ustar\0"
      const prefix = isUstar ? cString(header.subarray(345, 500)) : ""
      const shortName = cString(header.subarray(0, 100))
      const path = pax["path"] ?? longName ?? (prefix ? `${prefix}/${shortName}` : shortName)
      const linkname = pax["linkpath"] ?? longLink ?? cString(header.subarray(157, 257))
      if (Object.keys(pax).some((k) => k.startsWith("GNU.sparse."))) {
        return yield* invalid(`sparse file "${path}" is not supported`)
      }

      let type = ENTRY_TYPES[typeflag]
      if (type === undefined) {
        const what = typeflag === "S" ? "GNU sparse file" : `entry type "${typeflag}"`
        return yield* invalid(`${what} ("${path}") is not supported`)
      }
      // Pre-POSIX archives mark directories with a trailing slash on a regular entry.
      if (type === "file" && typeflag === "\0" && path.endsWith("/")) type = "directory"

      const numberOr = (paxKey: string, start: number, end: number, what: string) => {
        const fromPax = pax[paxKey]
        const value = fromPax !== undefined ? Number(fromPax) : parseNumber(header.subarray(start, end))
        return value === undefined || !Number.isFinite(value) || value < 0
          ? Effect.fail(invalid(`malformed ${what} for "${path}"`))
          : Effect.succeed(value)
      }
      const size = yield* numberOr("size", 124, 136, "size")
      if (!Number.isSafeInteger(size)) return yield* invalid(`malformed size for "${path}"`)
      const mode = parseNumber(header.subarray(100, 108))
      if (mode === undefined) return yield* invalid(`malformed mode for "${path}"`)
      const entry: TarEntry = {
        path,
        type,
        mode: mode & 0o7777,
        uid: yield* numberOr("uid", 108, 116, "uid"),
        gid: yield* numberOr("gid", 116, 124, "gid"),
        mtime: yield* numberOr("mtime", 136, 148, "mtime"),
        // As Go's archive/tar: only regular files carry content, whatever the size field says.
        size: type === "file" ? size : 0,
        linkname
      }
      pax = {}
      metaBytes = 0
      longName = undefined
      longLink = undefined

      let remaining = entry.size
      const body: TarEntryBody<SE, SR> = {
        forEachChunk: (f) =>
          Effect.gen(function*() {
            while (remaining > 0) {
              yield* reader.fill(1)
              if (reader.length === 0) return yield* truncated()
              const chunk = reader.takeUpTo(remaining)
              remaining -= chunk.byteLength
              yield* f(chunk)
            }
          })
      }
      yield* onEntry(entry, body)
      yield* skip(remaining + padding(entry.size))
    }
  }))
