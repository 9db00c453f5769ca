/**
 * Writing what a guest exports onto the host. The guest is untrusted here,
 * so its tar stream goes through the archive policy in the other direction
 * (src/archive/policy.ts: no names outside the output, no links leading out
 * of it, no writes through links, no devices, FIFOs or sockets, setuid and
 * setgid cleared), with bounds on entries, bytes and depth, and with names
 * holding control characters refused. Everything is written into a fresh
 * staging directory beside the output and moved into place only once the
 * whole stream was accepted, so a refusal leaves nothing behind and an
 * existing output is replaced in one rename or not at all.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { readCheckedTar } from "../archive/checked.js"
import { quoteEntryName, RefusedEntry, SourceError } from "../archive/errors.js"
import type { EntryLimits, SafeEntry } from "../archive/policy.js"
import { tarEnd, tarHeader, tarPadding } from "../archive/write.js"
import { WorkspaceExportFailed } from "../contract/errors.js"

/** What one export may bring onto the host, whatever the guest holds. */
export const EXPORT_LIMITS: EntryLimits = {
  maxEntries: 200_000,
  maxBytes: 8 * 1024 * 1024 * 1024,
  maxDepth: 128
}

export interface ExportTarget {
  readonly workspaceId: string
  /** The guest path exported, for messages. */
  readonly path: string
  /** Absolute host path; its parent exists. */
  readonly outputPath: string
  readonly format: "tree" | "tar"
  readonly overwrite: boolean
  readonly limits?: EntryLimits
}

export interface ExportOutcome {
  readonly artifactType: "file" | "directory"
  readonly entryCount: number
  readonly bytesWritten: number
  readonly neutralised: ReadonlyArray<string>
}

/** A control character in a name would reach terminals and scripts on the host as it is. */
const CONTROL = /[\u0000-\u001f\u007f]/

/** The export's error; an entry is named by its path in the guest (tar names are relative to the exported path's parent). */
const failed = (target: ExportTarget, detail: string, entry?: string) =>
  new WorkspaceExportFailed({
    workspaceId: target.workspaceId,
    path: target.path,
    detail,
    ...(entry !== undefined ? { entry: Path.posix.join(Path.posix.dirname(target.path), entry) } : {})
  })

const attempt = <A>(target: ExportTarget, what: string, f: () => A) =>
  Effect.try({ try: f, catch: (e) => failed(target, `${what}: ${(e as Error).message}`) })

/** Refuse before the guest is asked anything: an output in the way, or no directory to put it in. */
export const checkOutputPath = (target: ExportTarget) =>
  Effect.gen(function*() {
    const parent = Path.dirname(target.outputPath)
    const parentStat = Fs.statSync(parent, { throwIfNoEntry: false })
    if (!parentStat?.isDirectory()) return yield* failed(target, `output_path's directory ${parent} does not exist`)
    const existing = Fs.lstatSync(target.outputPath, { throwIfNoEntry: false })
    if (existing && !target.overwrite) {
      return yield* failed(target, `output_path ${target.outputPath} exists; pass overwrite to replace it`)
    }
    if (existing?.isDirectory() && target.format === "tar") {
      return yield* failed(target, `output_path ${target.outputPath} is a directory; a tar export replaces only a file`)
    }
  })

/** Move `staged` to the output: straight in, or in place of what is there (set aside first, removed after). */
const moveIntoPlace = (target: ExportTarget, staged: string, stagingDir: string) =>
  attempt(target, "could not move the export into place", () => {
    const existing = Fs.lstatSync(target.outputPath, { throwIfNoEntry: false })
    if (!existing) {
      Fs.renameSync(staged, target.outputPath)
      return
    }
    const aside = Path.join(stagingDir, "replaced")
    Fs.renameSync(target.outputPath, aside)
    try {
      Fs.renameSync(staged, target.outputPath)
    } catch (e) {
      Fs.renameSync(aside, target.outputPath)
      throw e
    }
  })

const writeEntry = (target: ExportTarget, root: string, entry: SafeEntry, content: Array<Uint8Array>) =>
  attempt(target, `could not write ${quoteEntryName(entry.path)}`, () => {
    const path = Path.join(root, entry.path)
    Fs.mkdirSync(Path.dirname(path), { recursive: true, mode: 0o755 })
    switch (entry.type) {
      case "directory":
        Fs.mkdirSync(path, { recursive: true, mode: 0o700 })
        return
      case "symlink":
        Fs.symlinkSync(entry.linkname, path)
        return
      case "hardlink":
        Fs.linkSync(Path.join(root, entry.linkname), path)
        return
      case "file": {
        // O_EXCL | O_NOFOLLOW: the staging directory is ours and new, but never write through anything.
        const fd = Fs.openSync(path, Fs.constants.O_WRONLY | Fs.constants.O_CREAT | Fs.constants.O_EXCL | Fs.constants.O_NOFOLLOW, 0o600)
        try {
          for (const chunk of content) Fs.writeSync(fd, chunk)
          Fs.fchmodSync(fd, entry.mode & 0o777)
          Fs.futimesSync(fd, entry.mtime, entry.mtime)
        } finally {
          Fs.closeSync(fd)
        }
      }
    }
  })

/**
 * Write the guest's tar stream of `target.path` to the output, as a tree or a
 * sanitized tar archive. `tar` names are relative to the exported path's
 * parent, so its first component is the exported file or directory itself.
 */
export const writeExport = <E>(
  tar: Stream.Stream<Uint8Array, E>,
  target: ExportTarget
): Effect.Effect<ExportOutcome, E | WorkspaceExportFailed> =>
  Effect.gen(function*() {
    yield* checkOutputPath(target)
    const limits = target.limits ?? EXPORT_LIMITS
    const label = `workspace ${target.workspaceId} ${target.path}`
    const stagingDir = yield* attempt(target, "could not make a staging directory", () =>
      Fs.mkdtempSync(Path.join(Path.dirname(target.outputPath), ".pyro-export-")))
    const tree = Path.join(stagingDir, "tree")
    Fs.mkdirSync(tree, { mode: 0o700 })
    let rootName: string | undefined
    let rootType: "file" | "directory" | undefined
    let entryCount = 0
    let bytesWritten = 0
    const neutralised: Array<string> = []
    const directories: Array<SafeEntry> = []

    const checkName = (entry: SafeEntry) =>
      Effect.gen(function*() {
        if (CONTROL.test(entry.path)) return yield* failed(target, "has a control character in its name", entry.path)
        const first = entry.path.split("/")[0]!
        if (rootName === undefined) {
          if (entry.type !== "file" && entry.type !== "directory") {
            return yield* failed(target, "is a link; export the file or directory it names instead", entry.path)
          }
          rootName = first
          rootType = entry.path === first ? entry.type : "directory"
        } else if (first !== rootName || rootType === "file") {
          return yield* failed(target, "is not inside the exported path", entry.path)
        }
        entryCount++
        if (entry.type === "directory") directories.push(entry)
      })

    /** The archive's refusals as the export's error, naming the entry; the stream's own errors pass through. */
    const asExportError = <X>(e: X): Exclude<X, RefusedEntry | SourceError> | WorkspaceExportFailed =>
      e instanceof RefusedEntry
        ? failed(target, e.reason, e.entry)
        : e instanceof SourceError
        ? failed(target, e.detail)
        : (e as Exclude<X, RefusedEntry | SourceError>)

    const write = (fd: number, bytes: Uint8Array) =>
      attempt(target, "could not write the archive", () => {
        Fs.writeSync(fd, bytes)
        bytesWritten += bytes.byteLength
      })

    const asArchive = Effect.acquireUseRelease(
      attempt(target, "could not create the archive", () => Fs.openSync(Path.join(stagingDir, "export.tar"), "wx", 0o644)),
      (fd) =>
        readCheckedTar(tar, label, limits, (entry, wasNeutralised, body) =>
          Effect.gen(function*() {
            yield* checkName(entry)
            if (wasNeutralised) neutralised.push(entry.path)
            yield* write(fd, tarHeader(entry))
            if (entry.type !== "file") return
            yield* body.forEachChunk((chunk) => write(fd, chunk))
            yield* write(fd, tarPadding(entry.size))
          })).pipe(Effect.zipRight(write(fd, tarEnd())), Effect.mapError(asExportError)),
      (fd) => Effect.sync(() => Fs.closeSync(fd))
    ).pipe(Effect.as(Path.join(stagingDir, "export.tar")))

    const asTree = Effect.gen(function*() {
      yield* readCheckedTar(tar, label, limits, (entry, wasNeutralised, body) =>
        Effect.gen(function*() {
          yield* checkName(entry)
          if (wasNeutralised) neutralised.push(entry.path)
          const content: Array<Uint8Array> = []
          if (entry.type === "file") {
            yield* body.forEachChunk((chunk) => Effect.sync(() => void content.push(chunk.slice())))
            bytesWritten += entry.size
          }
          yield* writeEntry(target, tree, entry, content)
        })).pipe(Effect.mapError(asExportError))
      // Directories get their own modes last: made 0700 so that their entries could be written.
      for (const dir of directories.reverse()) {
        yield* attempt(target, `could not set the mode of ${quoteEntryName(dir.path)}`, () => {
          Fs.chmodSync(Path.join(tree, dir.path), dir.mode & 0o777)
          Fs.utimesSync(Path.join(tree, dir.path), dir.mtime, dir.mtime)
        })
      }
      return Path.join(tree, rootName ?? "")
    })

    const written = Effect.gen(function*() {
      const staged = yield* (target.format === "tar" ? asArchive : asTree)
      if (rootName === undefined) return yield* failed(target, "the guest sent an empty archive")
      return staged
    })

    const staged = yield* written.pipe(Effect.onError(() => Effect.sync(() => Fs.rmSync(stagingDir, { recursive: true, force: true }))))
    yield* moveIntoPlace(target, staged, stagingDir).pipe(
      Effect.ensuring(Effect.sync(() => Fs.rmSync(stagingDir, { recursive: true, force: true })))
    )
    return { artifactType: rootType ?? "directory", entryCount, bytesWritten, neutralised } as const
  })
