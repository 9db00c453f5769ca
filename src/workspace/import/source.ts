/**
 * The safe import path for workspaces, host side: a host directory or a
 * `.tar`/`.tar.gz`/`.tgz` becomes a sanitized tar stream that the guest can
 * extract with a plain `tar -x -f - -C DEST`. Everything is checked here,
 * before a byte is sent: see ./policy.ts for the rules.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { archiveTarStream, walkArchive } from "./archive.js"
import { detectSource } from "./detect.js"
import { checkWalked, walkDirectory, walkedEntryStream } from "./directory.js"
import type { ImportSourceError, UnsafeImportEntry } from "./errors.js"
import { makeImportPolicy, type SafeEntry } from "./policy.js"
import { tarEnd } from "./tarWriter.js"

export interface ImportSummary {
  readonly kind: "directory" | "archive"
  readonly files: number
  readonly directories: number
  readonly symlinks: number
  readonly hardlinks: number
  /** Regular-file content bytes. */
  readonly bytes: number
  /** Entries (normalised paths) whose setuid/setgid bits were cleared. */
  readonly neutralised: ReadonlyArray<string>
}

const tally = (kind: ImportSummary["kind"]) => {
  const summary = { kind, files: 0, directories: 0, symlinks: 0, hardlinks: 0, bytes: 0, neutralised: [] as Array<string> }
  const add = (entry: SafeEntry, neutralised: boolean) => {
    switch (entry.type) {
      case "file":
        summary.files++
        summary.bytes += entry.size
        break
      case "directory":
        summary.directories++
        break
      case "symlink":
        summary.symlinks++
        break
      case "hardlink":
        summary.hardlinks++
        break
    }
    if (neutralised) summary.neutralised.push(entry.path)
  }
  return { summary: summary as ImportSummary, add }
}

/**
 * Full validation pass, reading everything once (archives are decompressed
 * and parsed; directories walked with lstat). Nothing is sent anywhere.
 */
export const inspectImportSource: (path: string) => Effect.Effect<ImportSummary, UnsafeImportEntry | ImportSourceError> =
  Effect.fn("inspectImportSource")(function*(path: string) {
    const source = yield* detectSource(path)
    if (source._tag === "Archive") {
      const { add, summary } = tally("archive")
      yield* walkArchive(path, source.gzip, (entry, neutralised) => Effect.sync(() => add(entry, neutralised)))
      return summary
    }
    const { add, summary } = tally("directory")
    const policy = makeImportPolicy()
    yield* Stream.runForEach(walkDirectory(path, source.root), (walked) =>
      checkWalked(path, policy, walked).pipe(
        Effect.map((checked) => {
          if (checked !== undefined) add(checked.entry, checked.neutralised)
        })
      ))
    return summary
  })

/**
 * The sanitized tar stream of the same entries, generated lazily with
 * backpressure: directory files are read with streams as the consumer pulls;
 * never the whole source in memory. Re-validates as it goes (the source may
 * have changed since inspect) and fails with the same errors; bytes already
 * emitted before a failure form a valid prefix of safe entries.
 */
export const importTarStream = (path: string): Stream.Stream<Uint8Array, UnsafeImportEntry | ImportSourceError> =>
  Stream.unwrap(
    detectSource(path).pipe(Effect.map((source) => {
      if (source._tag === "Archive") return archiveTarStream(path, source.gzip)
      return Stream.suspend(() => {
        const policy = makeImportPolicy()
        return Stream.concat(
          Stream.flatMap(walkDirectory(path, source.root), (walked) => walkedEntryStream(path, policy, walked)),
          Stream.succeed(tarEnd())
        )
      })
    }))
  )
