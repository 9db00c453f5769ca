/**
 * Raw ustar blocks for the tests' archive writers (test/oci/tarWriter.ts, and the
 * hostile archives of test/workspace/importArchive.test.ts): headers are written
 * exactly as given, nothing checked or sanitised.
 */

const octal = (value: number, width: number) => value.toString(8).padStart(width - 1, "0") + "\0"

export interface UstarFields {
  readonly name: string
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly size: number
  readonly mtime: number
  /** 0 file, 1 hard link, 2 symlink, 3 char, 4 block, 5 dir, 6 FIFO, x pax. */
  readonly typeflag: string
  readonly linkname: string
  readonly device?: { readonly major: number; readonly minor: number }
}

/** One 512-byte header block, checksum included; `name` and `linkname` are cut at 100 bytes. */
export const ustarHeader = (f: UstarFields): Buffer => {
  const block = Buffer.alloc(512)
  block.write(f.name, 0, 100, "utf8")
  block.write(octal(f.mode, 8), 100, "ascii")
  block.write(octal(f.uid, 8), 108, "ascii")
  block.write(octal(f.gid, 8), 116, "ascii")
  block.write(octal(f.size, 12), 124, "ascii")
  block.write(octal(f.mtime, 12), 136, "ascii")
  block.write("        ", 148, "ascii")
  block.write(f.typeflag, 156, "ascii")
  block.write(f.linkname, 157, 100, "utf8")
  block.write("ustar\0", 257, "ascii")
  block.write("00", 263, "ascii")
  if (f.device) {
    block.write(octal(f.device.major, 8), 329, "ascii")
    block.write(octal(f.device.minor, 8), 337, "ascii")
  }
  let sum = 0
  for (const byte of block) sum += byte
  block.write(octal(sum, 7) + " ", 148, "ascii")
  return block
}

/** Data padded with zeros to a whole number of blocks. */
export const padToBlock = (data: Buffer) => Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)])

/** One pax extended-header record, `<length> key=value\n`, whose length counts itself. */
export const paxRecord = (key: string, value: string) => {
  const body = ` ${key}=${value}\n`
  const bodyLength = Buffer.byteLength(body)
  let length = bodyLength + 1
  while (String(length).length + bodyLength !== length) length = String(length).length + bodyLength
  return `${length}${body}`
}

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(1024)
