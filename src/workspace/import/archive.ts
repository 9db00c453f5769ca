/**
 * Archive sources: the file is decompressed (gzip, streaming) and parsed with
 * the OCI layer reader, each entry checked by the import policy in order.
 * `walkArchive` drives one pass; `archiveTarStream` turns that callback-style
 * pass into a pull-based stream of the sanitized archive through a bounded
 * queue, so a slow consumer slows the reading of the source.
 */
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as Take from "effect/Take"
import * as FsP from "node:fs/promises"
import * as NodeStreamLib from "node:stream"
import * as Zlib from "node:zlib"
import type { InvalidArchive } from "../../oci/errors.js"
import { readTar, type TarEntryBody } from "../../oci/tar.js"
import { errorText, io, READ_FLAGS } from "./detect.js"
import { ImportSourceError, UnsafeImportEntry } from "./errors.js"
import { makeImportPolicy, type SafeEntry } from "./policy.js"
import { tarEnd, tarHeader, tarPadding } from "./tarWriter.js"

/** Chunks in flight between the reading fiber and the consumer (each at most ~64 KiB). */
const QUEUE_CHUNKS = 16
const READ_CHUNK = 64 * 1024

/** The archive's tar bytes, decompressed when gzip; read errors become ImportSourceError. */
const tarBytes = (path: string, gzip: boolean): Stream.Stream<Uint8Array, ImportSourceError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const handle = yield* Effect.acquireRelease(
      io(path, "cannot open", () => FsP.open(path, READ_FLAGS)),
      (h) => Effect.promise(() => h.close().catch(() => undefined))
    )
    return NodeStream.fromReadable<ImportSourceError, Uint8Array>(
      () => {
        const file = handle.createReadStream({ autoClose: false, highWaterMark: READ_CHUNK })
        return gzip ? NodeStreamLib.pipeline(file, Zlib.createGunzip({ chunkSize: READ_CHUNK }), () => undefined) : file
      },
      (error) => {
        const code = (error as NodeJS.ErrnoException | undefined)?.code ?? ""
        return new ImportSourceError({
          source: path,
          detail: code.startsWith("Z_")
            ? `corrupt or truncated gzip data (${errorText(error)})`
            : `cannot read: ${errorText(error)}`
        })
      },
      { chunkSize: READ_CHUNK }
    )
  }))

export type ArchiveBody = TarEntryBody<ImportSourceError, never>

/**
 * One pass over the archive at `path`: `onEntry` gets each accepted entry (and
 * its content, which it may read or leave) in order; the first refused entry
 * fails the pass with UnsafeImportEntry. Also fails when the archive stops
 * without its end-of-archive marker (the reader tolerates that; for an import
 * it means a truncated file).
 */
export const walkArchive = (
  path: string,
  gzip: boolean,
  onEntry: (
    entry: SafeEntry,
    neutralised: boolean,
    body: ArchiveBody
  ) => Effect.Effect<void, ImportSourceError | InvalidArchive>
): Effect.Effect<void, UnsafeImportEntry | ImportSourceError> =>
  Effect.suspend(() => {
    const policy = makeImportPolicy()
    let endOfInput = false
    const bytes = Stream.concat(
      tarBytes(path, gzip),
      Stream.drain(Stream.fromEffect(Effect.sync(() => void (endOfInput = true))))
    )
    return readTar(bytes, path, (entry, body): Effect.Effect<void, UnsafeImportEntry | ImportSourceError | InvalidArchive> => {
      const verdict = policy.check(entry)
      switch (verdict._tag) {
        case "Skip":
          return Effect.void
        case "Refuse":
          return Effect.fail(new UnsafeImportEntry({ source: path, entry: entry.path, reason: verdict.reason }))
        case "Accept":
          return onEntry(verdict.entry, verdict.neutralised, body)
      }
    }).pipe(
      Effect.catchTag("InvalidArchive", (error: InvalidArchive) =>
        Effect.fail(
          new ImportSourceError({
            source: path,
            detail: `not a valid tar archive (corrupt, truncated or unsupported): ${error.detail}`
          })
        )),
      Effect.zipRight(Effect.suspend(() =>
        endOfInput
          ? Effect.fail(
            new ImportSourceError({
              source: path,
              detail: "truncated archive: it ends without the end-of-archive marker"
            })
          )
          : Effect.void
      ))
    )
  })

/** The sanitized tar stream of an archive source, produced as the consumer pulls. */
export const archiveTarStream = (
  path: string,
  gzip: boolean
): Stream.Stream<Uint8Array, UnsafeImportEntry | ImportSourceError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const queue = yield* Effect.acquireRelease(
      Queue.bounded<Take.Take<Uint8Array, UnsafeImportEntry | ImportSourceError>>(QUEUE_CHUNKS),
      Queue.shutdown
    )
    const emit = (bytes: Uint8Array) => bytes.byteLength === 0 ? Effect.void : Queue.offer(queue, Take.of(bytes))
    yield* walkArchive(path, gzip, (entry, _neutralised, body) =>
      Effect.gen(function*() {
        yield* emit(tarHeader(entry))
        if (entry.type !== "file") return
        yield* body.forEachChunk(emit)
        yield* emit(tarPadding(entry.size))
      })).pipe(
        Effect.zipRight(emit(tarEnd())),
        Effect.matchCauseEffect({
          onFailure: (cause) => Queue.offer(queue, Take.failCause(cause)),
          onSuccess: () => Queue.offer(queue, Take.end)
        }),
        Effect.forkScoped
      )
    return Stream.flattenTake(Stream.fromQueue(queue))
  }))
