/**
 * Local file operations as Effects failing with OciIoError.
 *
 * Node's fs is used directly rather than @effect/platform's FileSystem because
 * extracting layers needs calls that service lacks (lstat, lchown, lutimes,
 * O_NOFOLLOW opens, link), and one way of touching files across src/oci keeps
 * the error channel uniform.
 */
import * as Effect from "effect/Effect"
import * as Crypto from "node:crypto"
import type * as Fs from "node:fs"
import * as FsP from "node:fs/promises"
import { OciIoError } from "./errors.js"

export const io = <A>(op: string, path: string, f: () => Promise<A>): Effect.Effect<A, OciIoError> =>
  Effect.tryPromise({ try: f, catch: (cause) => new OciIoError({ op, path, cause }) })

export const errorCode = (error: OciIoError): string | undefined => {
  const cause = error.cause
  return typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined
}

/**
 * Like `io` for a promise that takes an AbortSignal (a stream pipeline): on
 * interruption the signal is aborted and the promise awaited, so cleanup that
 * follows does not race with writes still in flight.
 */
export const ioAbortable = <A>(op: string, path: string, f: (signal: AbortSignal) => Promise<A>): Effect.Effect<A, OciIoError> =>
  Effect.async<A, OciIoError>((resume) => {
    const controller = new AbortController()
    const settled = f(controller.signal).then(
      (value) => resume(Effect.succeed(value)),
      (cause: unknown) => resume(Effect.fail(new OciIoError({ op, path, cause })))
    )
    return Effect.promise(() => {
      controller.abort()
      return settled
    })
  })

/** lstat, or `undefined` when nothing is there (or a parent is not a directory). */
export const lstatIfExists = (path: string): Effect.Effect<Fs.Stats | undefined, OciIoError> =>
  io("lstat", path, () => FsP.lstat(path)).pipe(
    Effect.catchIf((e) => errorCode(e) === "ENOENT" || errorCode(e) === "ENOTDIR", () => Effect.succeed(undefined))
  )

/** A sibling name for a file being written, matching removeStalePartials' `*.partial-<pid>-<hex>`. */
export const partialPath = (path: string) => `${path}.partial-${process.pid}-${Crypto.randomBytes(4).toString("hex")}`

/** Write all of `chunk` at the handle's current position (or at `position`). */
export const writeAll = (handle: FsP.FileHandle, path: string, chunk: Uint8Array, position?: number) =>
  io("write", path, async () => {
    let offset = 0
    while (offset < chunk.byteLength) {
      const { bytesWritten } = await handle.write(
        chunk,
        offset,
        chunk.byteLength - offset,
        position === undefined ? null : position + offset
      )
      offset += bytesWritten
    }
  })

/**
 * Open `path` for writing as a fresh file; the handle is closed when the
 * scope ends, and the file removed unless `keep` was called.
 */
export const openTempFile = (path: string) =>
  Effect.acquireRelease(
    io("create", path, () => FsP.open(path, "wx", 0o600)).pipe(
      Effect.map((handle) => ({ handle, kept: false }))
    ),
    (file) =>
      Effect.promise(async () => {
        await file.handle.close().catch(() => undefined)
        if (!file.kept) await FsP.rm(path, { force: true }).catch(() => undefined)
      })
  )

/** fsync, close and rename a temp file opened with openTempFile into place. */
export const commitTempFile = (
  file: { readonly handle: FsP.FileHandle; kept: boolean },
  tmp: string,
  target: string
) =>
  Effect.gen(function*() {
    yield* io("fsync", tmp, () => file.handle.sync())
    yield* io("close", tmp, () => file.handle.close())
    yield* io("rename", target, () => FsP.rename(tmp, target))
    file.kept = true
  })
