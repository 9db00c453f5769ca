/** A small ustar writer (with pax headers for long names) to build test layers, including hostile ones. */
import * as Zlib from "node:zlib"
import { END_OF_ARCHIVE, padToBlock as pad, paxRecord, ustarHeader as header } from "../support/ustar.js"

export type TarSpec =
  | { readonly type: "file"; readonly path: string; readonly data?: string | Uint8Array; readonly mode?: number; readonly mtime?: number; readonly uid?: number; readonly gid?: number }
  | { readonly type: "dir"; readonly path: string; readonly mode?: number; readonly mtime?: number }
  | { readonly type: "symlink"; readonly path: string; readonly target: string; readonly mtime?: number }
  | { readonly type: "hardlink"; readonly path: string; readonly target: string }
  | { readonly type: "fifo"; readonly path: string }
  | { readonly type: "char"; readonly path: string }

const TYPEFLAG = { file: "0", hardlink: "1", symlink: "2", char: "3", dir: "5", fifo: "6" } as const

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
  parts.push(END_OF_ARCHIVE)
  return Buffer.concat(parts)
}

export const tarGz = (entries: ReadonlyArray<TarSpec>) => Zlib.gzipSync(tarArchive(entries))
