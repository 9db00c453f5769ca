/**
 * What kind of import source a host path is: a directory, or a tar archive
 * (plain or gzip-compressed, told by content, not by the file name).
 */
import * as Effect from "effect/Effect"
import * as FsP from "node:fs/promises"
import { SourceError } from "../../archive/errors.js"
import { isTarStart } from "../../archive/read.js"
import { errorText, io, READ_FLAGS } from "../../archive/sourceIo.js"

export type DetectedSource =
  /** `root` is the real path of the directory (symlinks in the path given resolved once, here). */
  | { readonly _tag: "Directory"; readonly root: string }
  | { readonly _tag: "Archive"; readonly path: string; readonly gzip: boolean }

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

export const detectSource = (path: string): Effect.Effect<DetectedSource, SourceError> =>
  Effect.gen(function*() {
    const stat = yield* Effect.tryPromise({
      try: () => FsP.stat(path),
      catch: (error) =>
        new SourceError({
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
      new SourceError({ source: path, detail: "is neither a directory nor a tar, tar.gz or tgz archive" })
    if (!stat.isFile()) return yield* neither()
    const head = yield* readHead(path)
    if (head.byteLength === 0) return yield* new SourceError({ source: path, detail: "is an empty file, not an archive" })
    if (head[0] === 0x1f && head[1] === 0x8b) return { _tag: "Archive", path, gzip: true } as const
    if (!isTarStart(head)) return yield* neither()
    return { _tag: "Archive", path, gzip: false } as const
  })
