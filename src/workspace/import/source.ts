/**
 * The safe import path for workspaces, host side: a host directory or a
 * `.tar`/`.tar.gz`/`.tgz` becomes a sanitized tar stream that the guest can
 * extract (./guestUntar.ts). Everything is checked here, before a byte is
 * sent, by src/archive/ (policy.ts has the rules); this module picks the
 * source's kind and says what a refusal means for an import.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { readCheckedTar, sanitizedTar } from "../../archive/checked.js"
import { checkDirectory, directoryTar } from "../../archive/directory.js"
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

/**
 * Full validation pass, reading everything once (archives are decompressed
 * and parsed; directories walked with lstat). Nothing is sent anywhere.
 */
export const inspectImportSource: (path: string) => Effect.Effect<ImportSummary, UnsafeImportEntry | ImportSourceError> =
  Effect.fn("inspectImportSource")(function*(path: string) {
    const source = yield* detectSource(path)
    const { add, tally } = makeTally()
    if (source._tag === "Archive") {
      yield* readCheckedTar(tarFileBytes(path, source.gzip), path, UNBOUNDED, (entry, neutralised) =>
        Effect.sync(() => add(entry, neutralised)))
      return { kind: "archive", ...tally() } satisfies ImportSummary
    }
    yield* checkDirectory(path, source.root, UNBOUNDED, (checked) => add(checked.entry, checked.neutralised))
    return { kind: "directory", ...tally() } satisfies ImportSummary
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
