/**
 * A ustar writer for sanitized tar streams (what an import sends the guest,
 * output kept in the guest): regular files, directories, symlinks and hard
 * links, owned by root:root, with the mode and whole-second mtime given. A pax extended header (`x`) carries what ustar cannot: a name
 * that does not fit the name field nor splits into prefix + name, a link
 * target longer than 100 bytes, a size or mtime of 8^11 or more (those also go
 * in base-256 in the ustar field, which BusyBox reads and which BusyBox's pax
 * support lacks). GNU tar and BusyBox tar (1.35) both read pax `path` and
 * `linkpath`.
 *
 * Pure functions returning whole 512-byte blocks; the writer trusts its input
 * (it is the policy's job to make entries safe), which is also what lets tests
 * write hostile archives with it.
 */

export type TarWriterEntryType = "file" | "directory" | "symlink" | "hardlink"

export interface TarWriterEntry {
  readonly path: string
  readonly type: TarWriterEntryType
  readonly mode: number
  /** Content bytes that follow the header (regular files; ignored otherwise). */
  readonly size: number
  /** Whole seconds since the epoch (a fraction is dropped). */
  readonly mtime: number
  /** Symlink or hard link target. */
  readonly linkname: string
}

export const BLOCK_SIZE = 512
const NAME_BYTES = 100
const PREFIX_BYTES = 155
const LINKNAME_BYTES = 100
/** The largest value an 11-digit octal field holds, plus one: 8 GiB for sizes. */
const OCTAL_LIMIT_12 = 8 ** 11

const TYPEFLAG: Readonly<Record<TarWriterEntryType, number>> = {
  file: 0x30, // "0"
  hardlink: 0x31, // "1"
  symlink: 0x32, // "2"
  directory: 0x35 // "5"
}

const encoder = new TextEncoder()

/** A numeric field: octal, NUL-terminated; base-256 (GNU, leading 0x80) when octal does not fit. */
const writeNumber = (block: Uint8Array, offset: number, width: number, value: number) => {
  const n = Math.max(0, Math.floor(value))
  if (n < 8 ** (width - 1)) {
    const text = n.toString(8).padStart(width - 1, "0")
    block.set(encoder.encode(text), offset)
    block[offset + width - 1] = 0
    return
  }
  let rest = BigInt(n)
  for (let i = width - 1; i >= 1; i--) {
    block[offset + i] = Number(rest & 0xffn)
    rest >>= 8n
  }
  block[offset] = 0x80
}

const writeBytes = (block: Uint8Array, offset: number, bytes: Uint8Array) => block.set(bytes, offset)

/** The longest prefix of `bytes` of at most `max` bytes that does not cut a UTF-8 character. */
const truncateUtf8 = (bytes: Uint8Array, max: number) => {
  if (bytes.byteLength <= max) return bytes
  let end = max
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--
  return bytes.subarray(0, end)
}

/** ustar name + prefix for `name`, or undefined when it needs a pax `path`. */
const splitName = (name: Uint8Array): { readonly prefix: Uint8Array; readonly name: Uint8Array } | undefined => {
  if (name.byteLength <= NAME_BYTES) return { prefix: new Uint8Array(), name }
  // A slash at index i splits into prefix [0, i) and name (i, end]; the name must be 1..100 bytes.
  for (let i = Math.max(1, name.byteLength - NAME_BYTES - 1); i <= PREFIX_BYTES && i < name.byteLength - 1; i++) {
    if (name[i] === 0x2f) return { prefix: name.subarray(0, i), name: name.subarray(i + 1) }
  }
  return undefined
}

/** One pax record: `<length> <key>=<value>\n`, the length counting itself. */
const paxRecord = (key: string, value: string) => {
  const body = encoder.encode(` ${key}=${value}\n`)
  let length = body.byteLength + 1
  while (String(length).length + body.byteLength !== length) length = String(length).length + body.byteLength
  const out = new Uint8Array(length)
  out.set(encoder.encode(String(length)), 0)
  out.set(body, String(length).length)
  return out
}

interface HeaderFields {
  readonly name: Uint8Array
  readonly prefix: Uint8Array
  readonly mode: number
  readonly size: number
  readonly mtime: number
  readonly typeflag: number
  readonly linkname: Uint8Array
}

const ustarHeader = (fields: HeaderFields): Uint8Array => {
  const block = new Uint8Array(BLOCK_SIZE)
  writeBytes(block, 0, fields.name)
  writeNumber(block, 100, 8, fields.mode)
  writeNumber(block, 108, 8, 0) // uid
  writeNumber(block, 116, 8, 0) // gid
  writeNumber(block, 124, 12, fields.size)
  writeNumber(block, 136, 12, fields.mtime)
  block.fill(0x20, 148, 156) // checksum placeholder: spaces
  block[156] = fields.typeflag
  writeBytes(block, 157, fields.linkname)
  writeBytes(block, 257, encoder.encode("ustar\0"))
  writeBytes(block, 263, encoder.encode("00"))
  writeBytes(block, 265, encoder.encode("root"))
  writeBytes(block, 297, encoder.encode("root"))
  writeNumber(block, 329, 8, 0) // devmajor
  writeNumber(block, 337, 8, 0) // devminor
  writeBytes(block, 345, fields.prefix)
  let sum = 0
  for (const byte of block) sum += byte
  writeBytes(block, 148, encoder.encode(sum.toString(8).padStart(6, "0")))
  block[154] = 0
  block[155] = 0x20
  return block
}

/** Zero bytes that bring `size` bytes of content to a whole number of blocks. */
export const tarPadding = (size: number): Uint8Array => new Uint8Array((BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE)

/** The end-of-archive marker: two zero blocks. */
export const tarEnd = (): Uint8Array => new Uint8Array(2 * BLOCK_SIZE)

/** The header block(s) of one entry: a pax extended header first when ustar cannot say it all. */
export const tarHeader = (entry: TarWriterEntry): Uint8Array => {
  const nameText = entry.type === "directory" && !entry.path.endsWith("/") ? `${entry.path}/` : entry.path
  const nameBytes = encoder.encode(nameText)
  const linkBytes = entry.type === "symlink" || entry.type === "hardlink" ? encoder.encode(entry.linkname) : new Uint8Array()
  const size = entry.type === "file" ? Math.max(0, Math.floor(entry.size)) : 0
  const mtime = Math.max(0, Math.floor(entry.mtime))

  const records: Array<Uint8Array> = []
  const split = splitName(nameBytes)
  if (split === undefined) records.push(paxRecord("path", nameText))
  if (linkBytes.byteLength > LINKNAME_BYTES) records.push(paxRecord("linkpath", entry.linkname))
  if (size >= OCTAL_LIMIT_12) records.push(paxRecord("size", String(size)))
  if (mtime >= OCTAL_LIMIT_12) records.push(paxRecord("mtime", String(mtime)))

  // A reader that ignores pax gets the last component, cut to fit: still a harmless relative name.
  const fallbackName = () => {
    const parts = nameText.split("/").filter((p) => p !== "")
    const last = parts[parts.length - 1] ?? "entry"
    return truncateUtf8(encoder.encode(entry.type === "directory" ? `${last}/` : last), NAME_BYTES)
  }
  const header = ustarHeader({
    name: split?.name ?? fallbackName(),
    prefix: split?.prefix ?? new Uint8Array(),
    mode: entry.mode & 0o7777,
    size,
    mtime,
    typeflag: TYPEFLAG[entry.type],
    linkname: linkBytes.byteLength > LINKNAME_BYTES ? new Uint8Array() : linkBytes
  })
  if (records.length === 0) return header

  let paxLength = 0
  for (const record of records) paxLength += record.byteLength
  const paxData = new Uint8Array(paxLength)
  let offset = 0
  for (const record of records) {
    paxData.set(record, offset)
    offset += record.byteLength
  }
  const paxHeader = ustarHeader({
    name: truncateUtf8(encoder.encode(`PaxHeaders/${new TextDecoder().decode(fallbackName())}`), NAME_BYTES),
    prefix: new Uint8Array(),
    mode: 0o644,
    size: paxLength,
    mtime: Math.min(mtime, OCTAL_LIMIT_12 - 1),
    typeflag: 0x78, // "x"
    linkname: new Uint8Array()
  })
  const padding = tarPadding(paxLength)
  const out = new Uint8Array(BLOCK_SIZE + paxLength + padding.byteLength + BLOCK_SIZE)
  out.set(paxHeader, 0)
  out.set(paxData, BLOCK_SIZE)
  out.set(header, BLOCK_SIZE + paxLength + padding.byteLength)
  return out
}

/** A whole entry with its content in memory (small entries, tests): header, content, padding. */
export const tarEntry = (entry: TarWriterEntry, content: Uint8Array = new Uint8Array()): Uint8Array => {
  const header = tarHeader({ ...entry, size: entry.type === "file" ? content.byteLength : 0 })
  const padding = entry.type === "file" ? tarPadding(content.byteLength) : new Uint8Array()
  const out = new Uint8Array(header.byteLength + (entry.type === "file" ? content.byteLength : 0) + padding.byteLength)
  out.set(header, 0)
  if (entry.type === "file") out.set(content, header.byteLength)
  return out
}
