/** A small ustar writer (with pax headers for long names) to build test layers, including hostile ones. */
import * as Zlib from "node:zlib"

export type TarSpec =
  | { readonly type: "file"; readonly path: string; readonly data?: string | Uint8Array; readonly mode?: number; readonly mtime?: number; readonly uid?: number; readonly gid?: number }
  | { readonly type: "dir"; readonly path: string; readonly mode?: number; readonly mtime?: number }
  | { readonly type: "symlink"; readonly path: string; readonly target: string; readonly mtime?: number }
  | { readonly type: "hardlink"; readonly path: string; readonly target: string }
  | { readonly type: "fifo"; readonly path: string }
  | { readonly type: "char"; readonly path: string }

const TYPEFLAG = { file: "0", hardlink: "1", symlink: "2", char: "3", dir: "5", fifo: "6" } as const

const octal = (value: number, width: number) => value.toString(8).padStart(width - 1, "0") + "\0"

const header = (fields: {
  name: string
  mode: number
  uid: number
  gid: number
  size: number
  mtime: number
  typeflag: string
  linkname: string
}) => {
  const block = Buffer.alloc(512)
  block.write(fields.name, 0, 100, "utf8")
  block.write(octal(fields.mode, 8), 100, "ascii")
  block.write(octal(fields.uid, 8), 108, "ascii")
  block.write(octal(fields.gid, 8), 116, "ascii")
  block.write(octal(fields.size, 12), 124, "ascii")
  block.write(octal(fields.mtime, 12), 136, "ascii")
  block.write("        ", 148, "ascii")
  block.write(fields.typeflag, 156, "ascii")
  block.write(fields.linkname, 157, 100, "utf8")
  block.write("ustar\0", 257, "ascii")
  block.write("00", 263, "ascii")
  let sum = 0
  for (const byte of block) sum += byte
  block.write(octal(sum, 7) + " ", 148, "ascii")
  return block
}

const pad = (data: Buffer) => Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)])

const paxRecord = (key: string, value: string) => {
  const body = ` ${key}=${value}\n`
  const bodyLength = Buffer.byteLength(body)
  let length = bodyLength + 1
  while (String(length).length + bodyLength !== length) length = String(length).length + bodyLength
  return `${length}${body}`
}

export const tarArchive = (entries: ReadonlyArray<TarSpec>): Buffer => {
  const parts: Array<Buffer> = []
  for (const entry of entries) {
    const data = entry.type === "file" ? Buffer.from(entry.data ?? "") : Buffer.alloc(0)
    const linkname = entry.type === "symlink" || entry.type === "hardlink" ? entry.target : ""
    const pax: Array<string> = []
    if (Buffer.byteLength(entry.path) > 99) pax.push(paxRecord("path", entry.path))
    if (Buffer.byteLength(linkname) > 99) pax.push(paxRecord("linkpath", linkname))
    if (pax.length > 0) {
      const body = Buffer.from(pax.join(""))
      parts.push(header({ name: "PaxHeader", mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0, typeflag: "x", linkname: "" }))
      parts.push(pad(body))
    }
    const mode = "mode" in entry && entry.mode !== undefined ? entry.mode : entry.type === "dir" ? 0o755 : 0o644
    const mtime = "mtime" in entry && entry.mtime !== undefined ? entry.mtime : 1_700_000_000
    parts.push(header({
      name: entry.path.slice(0, 99),
      mode,
      uid: "uid" in entry && entry.uid !== undefined ? entry.uid : 0,
      gid: "gid" in entry && entry.gid !== undefined ? entry.gid : 0,
      size: data.length,
      mtime,
      typeflag: TYPEFLAG[entry.type],
      linkname: linkname.slice(0, 99)
    }))
    if (data.length > 0) parts.push(pad(data))
  }
  parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}

export const tarGz = (entries: ReadonlyArray<TarSpec>) => Zlib.gzipSync(tarArchive(entries))
