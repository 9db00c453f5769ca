/**
 * The safe import path for workspaces, host side: a host directory or a
 * `.tar`/`.tar.gz`/`.tgz` becomes a sanitized tar stream that the guest can
 * extract (./guestUntar.ts), and so does a chosen subset of a directory (a
 * project's tracked files, src/workspace/project/seed.ts). Everything is
 * checked here, before a byte is sent, by src/archive/ (policy.ts has the
 * rules); this module picks the source's kind and says what a refusal means
 * for an import.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { readCheckedTar, sanitizedTar } from "../../archive/checked.js"
import { checkDirectory, directoryTar, type WalkSelection } from "../../archive/directory.js"
import type { RefusedEntry, SourceError } from "../../archive/errors.js"
import { UNBOUNDED } from "../../archive/policy.js"
import { type EntryTally, makeTally } from "../../archive/tally.js"
import { tarFileBytes } from "../../archive/tarFile.js"
import { detectSource } from "./detect.js"
import { ImportSourceError, UnsafeImportEntry } from "./errors.js"

export interface ImportSummary extends EntryTally {
  readonly kind: "directory" | "archive"
}

/** The archive module's failures as the import's public errors (same fields, import wording). */
const asImportError = (error: RefusedEntry | SourceError): UnsafeImportEntry | ImportSourceError =>
  error._tag === "RefusedEntry"
    ? new UnsafeImportEntry({ source: error.source, entry: error.entry, reason: error.reason })
    : new ImportSourceError({ source: error.source, detail: error.detail })

/** An import from anywhere: one checking pass that reads everything once, and the tar stream of the same entries. */
export interface ImportSource {
  readonly inspect: Effect.Effect<ImportSummary, UnsafeImportEntry | ImportSourceError>
  readonly tar: Stream.Stream<Uint8Array, UnsafeImportEntry | ImportSourceError>
}

const inspectDirectory = (label: string, root: string, select?: WalkSelection) =>
  Effect.suspend(() => {
    const { add, tally } = makeTally()
    return checkDirectory(label, root, UNBOUNDED, (checked) => add(checked.entry, checked.neutralised), select).pipe(
      Effect.map(() => ({ kind: "directory", ...tally() }) satisfies ImportSummary)
    )
  })

/**
 * Full validation pass, reading everything once (archives are decompressed
 * and parsed; directories walked with lstat). Nothing is sent anywhere.
 */
export const inspectImportSource: (path: string) => Effect.Effect<ImportSummary, UnsafeImportEntry | ImportSourceError> =
  Effect.fn("inspectImportSource")(function*(path: string) {
    const source = yield* detectSource(path)
    if (source._tag === "Archive") {
      const { add, tally } = makeTally()
      yield* readCheckedTar(tarFileBytes(path, source.gzip), path, UNBOUNDED, (entry, neutralised) =>
        Effect.sync(() => add(entry, neutralised)))
      return { kind: "archive", ...tally() } satisfies ImportSummary
    }
    return yield* inspectDirectory(path, source.root)
  }, Effect.mapError(asImportError))

/**
 * The sanitized tar stream of the same entries, generated lazily with
 * backpressure: directory files are read with streams as the consumer pulls;
 * never the whole source in memory. Re-validates as it goes (the source may
 * have changed since inspect) and fails with the same errors; bytes already
 * emitted before a failure form a valid prefix of safe entries.
 */
export const importTarStream = (path: string): Stream.Stream<Uint8Array, UnsafeImportEntry | ImportSourceError> =>
  Stream.unwrap(
    detectSource(path).pipe(Effect.map((source) =>
      source._tag === "Archive"
        ? sanitizedTar(tarFileBytes(path, source.gzip), path, UNBOUNDED)
        : directoryTar(path, source.root, UNBOUNDED)
    ))
  ).pipe(Stream.mapError(asImportError))

/** A host path (directory or archive) as an import. */
export const pathImport = (path: string): ImportSource => ({ inspect: inspectImportSource(path), tar: importTarStream(path) })

/**
 * Only the entries `select` takes of the directory `root` (a project's
 * tracked files), named `label` in errors; checked by the same policy.
 */
export const selectedDirectoryImport = (label: string, root: string, select: WalkSelection): ImportSource => ({
  inspect: inspectDirectory(label, root, select).pipe(Effect.mapError(asImportError)),
  tar: directoryTar(label, root, UNBOUNDED, select).pipe(Stream.mapError(asImportError))
})
