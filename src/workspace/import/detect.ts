/**
 * What kind of import source a host path is: a directory, or a tar archive
 * (plain or gzip-compressed, told by content, not by the file name).
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as FsP from "node:fs/promises"
import { ImportSourceError } from "./errors.js"

export type DetectedSource =
  /** `root` is the real path of the directory (symlinks in the path given resolved once, here). */
  | { readonly _tag: "Directory"; readonly root: string }
  | { readonly _tag: "Archive"; readonly path: string; readonly gzip: boolean }

export const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error))

/** A promise-returning host call, its rejection as an ImportSourceError for `source`. */
export const io = <A>(source: string, what: string, f: () => Promise<A>): Effect.Effect<A, ImportSourceError> =>
  Effect.tryPromise({
    try: f,
    catch: (error) => new ImportSourceError({ source, detail: `${what}: ${errorText(error)}` })
  })

/** Opened without following a FIFO's writer: a path swapped for a FIFO fails instead of blocking. */
export const READ_FLAGS = Fs.constants.O_RDONLY | Fs.constants.O_NONBLOCK

/** A ustar/v7 header block whose checksum is right (signed or unsigned, as readers accept). */
const looksLikeTarHeader = (block: Uint8Array) => {
  if (block.every((b) => b === 0)) return true // an empty archive: the end marker alone
  const field = new TextDecoder().decode(block.subarray(148, 156)).replace(/\0.*$/s, "").trim()
  if (!/^[0-7]+$/.test(field)) return false
  const stored = parseInt(field, 8)
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < 512; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!
    unsigned += byte
    signed += byte > 127 ? byte - 256 : byte
  }
  return stored === unsigned || stored === signed
}

const readHead = (path: string) =>
  io(path, "cannot read", async () => {
    const handle = await FsP.open(path, READ_FLAGS)
    try {
      const head = new Uint8Array(512)
      let filled = 0
      while (filled < head.byteLength) {
        const { bytesRead } = await handle.read(head, filled, head.byteLength - filled, filled)
        if (bytesRead === 0) break
        filled += bytesRead
      }
      return head.subarray(0, filled)
    } finally {
      await handle.close()
    }
  })

export const detectSource = (path: string): Effect.Effect<DetectedSource, ImportSourceError> =>
  Effect.gen(function*() {
    const stat = yield* Effect.tryPromise({
      try: () => FsP.stat(path),
      catch: (error) =>
        new ImportSourceError({
          source: path,
          detail: (error as NodeJS.ErrnoException).code === "ENOENT"
            ? "no such file or directory"
            : `cannot stat: ${errorText(error)}`
        })
    })
    if (stat.isDirectory()) {
      return { _tag: "Directory", root: yield* io(path, "cannot resolve the path", () => FsP.realpath(path)) } as const
    }
    const neither = () =>
      new ImportSourceError({ source: path, detail: "is neither a directory nor a tar, tar.gz or tgz archive" })
    if (!stat.isFile()) return yield* neither()
    const head = yield* readHead(path)
    if (head.byteLength === 0) return yield* new ImportSourceError({ source: path, detail: "is an empty file, not an archive" })
    if (head[0] === 0x1f && head[1] === 0x8b) return { _tag: "Archive", path, gzip: true } as const
    if (head.byteLength < 512 || !looksLikeTarHeader(head)) return yield* neither()
    return { _tag: "Archive", path, gzip: false } as const
  })
