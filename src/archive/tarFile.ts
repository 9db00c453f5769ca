/** A tar file on the host, plain or gzip-compressed, as a stream of its tar bytes. */
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as FsP from "node:fs/promises"
import * as NodeStreamLib from "node:stream"
import * as Zlib from "node:zlib"
import { SourceError } from "./errors.js"
import { errorText, io, READ_FLAGS } from "./sourceIo.js"

const READ_CHUNK = 64 * 1024

/** The file's tar bytes, decompressed when gzip, read as the consumer pulls; read errors become SourceError. */
export const tarFileBytes = (path: string, gzip: boolean): Stream.Stream<Uint8Array, SourceError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const handle = yield* Effect.acquireRelease(
      io(path, "cannot open", () => FsP.open(path, READ_FLAGS)),
      (h) => Effect.promise(() => h.close().catch(() => undefined))
    )
    return NodeStream.fromReadable<SourceError, Uint8Array>(
      () => {
        const file = handle.createReadStream({ autoClose: false, highWaterMark: READ_CHUNK })
        return gzip ? NodeStreamLib.pipeline(file, Zlib.createGunzip({ chunkSize: READ_CHUNK }), () => undefined) : file
      },
      (error) => {
        const code = (error as NodeJS.ErrnoException | undefined)?.code ?? ""
        return new SourceError({
          source: path,
          detail: code.startsWith("Z_")
            ? `corrupt or truncated gzip data (${errorText(error)})`
            : `cannot read: ${errorText(error)}`
        })
      },
      { chunkSize: READ_CHUNK }
    )
  }))
