/**
 * debugfs's answers to the requests ./debugfs.ts sends, parsed strictly: the
 * echo of each request (`debugfs: ls -p <12>`), then
 *
 * - `ls -p`: one record per entry, `/INO/MODE/UID/GID/NAME/SIZE/` and a newline
 *   (SIZE empty for a directory), then an empty line. NAME is the disk's bytes,
 *   anything but `/` (a newline or an escape included): a record is read field
 *   by field up to each `/`, never line by line, so no name can end it early.
 * - `inode_dump`: the inode as hex lines (`OOOO  xxxx xxxx ... ASCII`, offsets
 *   in octal, `*` for lines repeating the one before), then an empty line;
 *   debugfs writes those lines itself (the ASCII column is printable only).
 * - `cat`: exactly the file's bytes.
 *
 * A disk the guest made unreadable on purpose gets a malformed answer, never
 * more than it asked for: the parsers return undefined at the first surprise.
 */

/** An ext4 name is at most 255 bytes. */
const MAX_NAME_BYTES = 255
const SLASH = 0x2f
const NEWLINE = 0x0a

export interface DirEntry {
  readonly ino: number
  readonly mode: number
  /** The name's bytes as the disk holds them. */
  readonly name: Uint8Array
}

/** A read position in an answer. */
export class Cursor {
  at = 0
  constructor(readonly bytes: Uint8Array) {}
  get done() {
    return this.at >= this.bytes.byteLength
  }
  /** The bytes up to `stop` (which is skipped), at most `max` of them; undefined when it does not come. */
  until(stop: number, max: number): Uint8Array | undefined {
    const end = Math.min(this.bytes.byteLength, this.at + max + 1)
    for (let i = this.at; i < end; i++) {
      if (this.bytes[i] === stop) {
        const out = this.bytes.subarray(this.at, i)
        this.at = i + 1
        return out
      }
    }
    return undefined
  }
  take(n: number): Uint8Array | undefined {
    if (this.at + n > this.bytes.byteLength) return undefined
    const out = this.bytes.subarray(this.at, this.at + n)
    this.at += n
    return out
  }
}

const ascii = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1")

/** A whole number in `radix` of at most `digits` digits, or undefined. */
const numberIn = (bytes: Uint8Array | undefined, radix: 8 | 10, digits: number): number | undefined => {
  if (!bytes) return undefined
  const text = ascii(bytes)
  if (!(radix === 8 ? /^[0-7]+$/ : /^\d+$/).test(text) || text.length > digits) return undefined
  const n = parseInt(text, radix)
  return Number.isSafeInteger(n) ? n : undefined
}

/** The echo debugfs prints before answering `request` (-f mode). */
export const expectEcho = (c: Cursor, request: string): boolean => {
  const line = c.until(NEWLINE, request.length + 16)
  return line !== undefined && ascii(line) === `debugfs: ${request}`
}

/**
 * One `ls -p` answer (its echo read already): the entries but `.` and `..`.
 * `cut`: the run was cut at its size bound, so the answer may end anywhere; it
 * then gives the entries read whole until the cut, and `complete: false`.
 */
export const parseListing = (
  c: Cursor,
  cut = false
): { readonly entries: Array<DirEntry>; readonly complete: boolean } | undefined => {
  const entries: Array<DirEntry> = []
  for (;;) {
    if (c.done) return cut ? { entries, complete: false } : undefined
    if (c.bytes[c.at] === NEWLINE) {
      c.at++
      return { entries, complete: true }
    }
    if (c.bytes[c.at] !== SLASH) return undefined
    c.at++
    const ino = numberIn(c.until(SLASH, 10), 10, 10)
    const mode = numberIn(c.until(SLASH, 7), 8, 7)
    const uid = numberIn(c.until(SLASH, 10), 10, 10)
    const gid = numberIn(c.until(SLASH, 10), 10, 10)
    const name = c.until(SLASH, MAX_NAME_BYTES)
    const size = c.until(SLASH, 20)
    const end = c.until(NEWLINE, 0)
    if (
      ino === undefined || ino === 0 || ino > 0xffffffff || mode === undefined || mode > 0o177777 || uid === undefined ||
      gid === undefined || name === undefined || size === undefined || (size.byteLength > 0 && numberIn(size, 10, 20) === undefined) ||
      end === undefined
    ) return cut ? { entries, complete: false } : undefined
    const text = ascii(name)
    if (name.byteLength > 0 && text !== "." && text !== "..") entries.push({ ino, mode, name })
  }
}

const HEX_LINE = /^([0-7]{4,8}) {2}((?:[0-9a-f]{4} ){8}) /

/** One `inode_dump` answer (its echo read already): the inode's `size` bytes. */
export const parseInodeDump = (c: Cursor, size: number): Uint8Array | undefined => {
  const inode = new Uint8Array(size)
  let filled = 0
  let last: Uint8Array | undefined
  let repeating = false
  const repeatUntil = (offset: number) => {
    if (!last || (offset - filled) % 16 !== 0 || offset > size) return false
    for (; filled < offset; filled += 16) inode.set(last, filled)
    return true
  }
  for (;;) {
    const line = c.until(NEWLINE, 80)
    if (line === undefined) return undefined
    if (line.byteLength === 0) {
      if (repeating && !repeatUntil(size)) return undefined
      return filled === size ? inode : undefined
    }
    const text = ascii(line)
    if (text === "*") {
      if (repeating || !last) return undefined
      repeating = true
      continue
    }
    const match = HEX_LINE.exec(text)
    if (!match) return undefined
    const offset = parseInt(match[1]!, 8)
    if (repeating) {
      if (!repeatUntil(offset)) return undefined
      repeating = false
    }
    if (offset !== filled || offset + 16 > size) return undefined
    last = Buffer.from(match[2]!.replace(/ /g, ""), "hex")
    inode.set(last, filled)
    filled += 16
  }
}

/** What a listing shows of an inode, read from its raw bytes (ext4's on-disk layout, little-endian). */
export interface InodeFacts {
  readonly type: "file" | "directory" | "symlink" | "whiteout" | "other"
  /** Permission bits (and setuid, setgid, sticky). */
  readonly permissions: number
  readonly size: number
  /** Seconds since the epoch. */
  readonly mtime: number
  /** A short link's target, kept in the inode itself; a longer one is read with `cat`. */
  readonly inlineTarget?: Uint8Array
}

const S_IFMT = 0o170000
const EXTENTS_FL = 0x80000
const INLINE_DATA_FL = 0x10000000
/** i_block: 15 words, where a short symlink keeps its target. */
const I_BLOCK = 0x28
const I_BLOCK_BYTES = 60

export const inodeFacts = (inode: Uint8Array): InodeFacts => {
  const view = new DataView(inode.buffer, inode.byteOffset, inode.byteLength)
  const mode = view.getUint16(0, true)
  const size = view.getUint32(4, true) + view.getUint32(0x6c, true) * 2 ** 32
  const flags = view.getUint32(0x20, true)
  let mtime = view.getInt32(0x10, true)
  // The extra field's low two bits extend the seconds past 2038, when the inode has room for it.
  if (inode.byteLength >= 0x8c && view.getUint16(0x80, true) >= 12) mtime += (view.getUint32(0x88, true) & 3) * 2 ** 32
  const format = mode & S_IFMT
  const permissions = mode & 0o7777
  const common = { permissions, size, mtime }
  if (format === 0o100000) return { type: "file", ...common }
  if (format === 0o040000) return { type: "directory", ...common }
  if (format === 0o120000) {
    const inline = size < I_BLOCK_BYTES && (flags & (EXTENTS_FL | INLINE_DATA_FL)) === 0
    return { type: "symlink", ...common, ...(inline ? { inlineTarget: inode.slice(I_BLOCK, I_BLOCK + size) } : {}) }
  }
  // overlayfs records a deletion from the image as a character device 0:0.
  const whiteout = format === 0o020000 && view.getUint32(I_BLOCK, true) === 0 && view.getUint32(I_BLOCK + 4, true) === 0
  return { type: whiteout ? "whiteout" : "other", ...common }
}
