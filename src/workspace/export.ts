/**
 * Writing what a guest exports onto the host. The guest is untrusted here,
 * so its tar stream goes through the archive policy in the other direction
 * (src/archive/policy.ts: no names outside the output, no links leading out
 * of it, no writes through links, no devices, FIFOs or sockets, setuid and
 * setgid cleared), with bounds on entries, bytes and depth, and with names
 * holding control characters refused. The policy's root is the exported
 * file or directory itself (the tar's names start with its name, which is
 * taken off first), so no link may lead even one level above the output.
 * Everything is written into a fresh staging directory beside the output,
 * file content streamed to disk as it arrives, and published only once the
 * whole stream was accepted: a refusal leaves nothing behind, an existing
 * output is replaced in one rename or (without `overwrite`) never touched.
 */
import * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { InvalidTar } from "../archive/errors.js"
import { type EntryLimits, makeEntryPolicy, type SafeEntry } from "../archive/policy.js"
import { readTar, type TarEntry, type TarEntryBody } from "../archive/read.js"
import { tarEnd, tarHeader, tarPadding } from "../archive/write.js"
import { quoteEntryName, WorkspaceExportFailed } from "../contract/errors.js"

/** What one export may bring onto the host, whatever the guest holds. */
export const EXPORT_LIMITS: EntryLimits = {
  maxEntries: 200_000,
  maxBytes: 8 * 1024 * 1024 * 1024,
  maxDepth: 128
}

export interface ExportTarget {
  readonly workspaceId: string
  /** The guest path exported (absolute, normalised), for messages. */
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

/**
 * The export's error; an entry is named by its path in the guest: its tar
 * name (relative to the exported path's parent) after that parent, as sent,
 * never normalised (a `..` in it is the point).
 */
const failed = (target: ExportTarget, detail: string, entry?: string) =>
  new WorkspaceExportFailed({
    workspaceId: target.workspaceId,
    path: target.path,
    detail,
    ...(entry !== undefined ? { entry: `${Path.posix.dirname(target.path)}/${entry}` } : {})
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

/**
 * Move `staged` to the output. Without `overwrite`, never over anything that
 * appeared meanwhile: a file is hard-linked into place (fails if the name is
 * taken), a directory renamed onto an empty directory made for it. With
 * `overwrite`, what is there is set aside, replaced, then removed.
 */
const publish = (target: ExportTarget, staged: string, stagingDir: string, isDirectory: boolean) =>
  attempt(target, "could not move the export into place", () => {
    const existing = Fs.lstatSync(target.outputPath, { throwIfNoEntry: false })
    if (!existing || !target.overwrite) {
      if (isDirectory) {
        Fs.mkdirSync(target.outputPath) // EEXIST if something appeared
        Fs.renameSync(staged, target.outputPath)
      } else {
        Fs.linkSync(staged, target.outputPath) // EEXIST likewise
      }
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

/** Where accepted entries go: a tree in the staging directory, or one archive there. */
interface Sink {
  readonly write: <E>(entry: SafeEntry, body: TarEntryBody<E, never>) => Effect.Effect<void, E | InvalidTar | WorkspaceExportFailed>
  readonly finish: Effect.Effect<void, WorkspaceExportFailed>
  /** Whatever the pass's outcome: what the sink holds open. */
  readonly release: Effect.Effect<void>
  readonly staged: string
}

/** Stream a file's content into a new file (O_EXCL | O_NOFOLLOW: never through anything), chunk by chunk. */
const streamInto = <E>(target: ExportTarget, path: string, entry: SafeEntry, body: TarEntryBody<E, never>) =>
  Effect.acquireUseRelease(
    attempt(target, `could not write ${quoteEntryName(entry.path)}`, () =>
      Fs.openSync(path, Fs.constants.O_WRONLY | Fs.constants.O_CREAT | Fs.constants.O_EXCL | Fs.constants.O_NOFOLLOW, 0o600)),
    (fd) =>
      Effect.zipRight(
        body.forEachChunk((chunk) => attempt(target, `could not write ${quoteEntryName(entry.path)}`, () => void Fs.writeSync(fd, chunk))),
        attempt(target, `could not write ${quoteEntryName(entry.path)}`, () => {
          Fs.fchmodSync(fd, entry.mode & 0o777)
          Fs.futimesSync(fd, entry.mtime, entry.mtime)
        })
      ),
    (fd) => Effect.sync(() => Fs.closeSync(fd))
  )

/** A tree rooted at `root` (the exported directory itself, or the exported file). */
const treeSink = (target: ExportTarget, root: string, rootIsDirectory: boolean): Sink => {
  const directories: Array<SafeEntry> = []
  const locate = (entry: SafeEntry) => (entry.path === "" ? root : Path.join(root, entry.path))
  return {
    staged: root,
    write: (entry, body) =>
      Effect.gen(function*() {
        const path = locate(entry)
        yield* attempt(target, `could not write ${quoteEntryName(entry.path)}`, () => {
          if (entry.path !== "") Fs.mkdirSync(Path.dirname(path), { recursive: true, mode: 0o700 })
          if (entry.type === "directory") Fs.mkdirSync(path, { recursive: true, mode: 0o700 })
          if (entry.type === "symlink") Fs.symlinkSync(entry.linkname, path)
          if (entry.type === "hardlink") Fs.linkSync(Path.join(root, entry.linkname), path)
        })
        if (entry.type === "directory") directories.push(entry)
        if (entry.type === "file") yield* streamInto(target, path, entry, body)
      }),
    // Directories get their own modes last: made 0700 so that their entries could be written.
    finish: Effect.forEach(directories.reverse(), (dir) =>
      attempt(target, `could not set the mode of ${quoteEntryName(dir.path)}`, () => {
        Fs.chmodSync(locate(dir), dir.mode & 0o777)
        Fs.utimesSync(locate(dir), dir.mtime, dir.mtime)
      }), { discard: true }).pipe(Effect.when(() => rootIsDirectory), Effect.asVoid),
    release: Effect.void
  }
}

/** One POSIX tar archive, names again under the exported path's own name; its file is closed by `release`. */
const archiveSink = (target: ExportTarget, archive: string, rootName: string, count: (bytes: number) => void) =>
  Effect.map(attempt(target, "could not create the archive", () => Fs.openSync(archive, "wx", 0o644)), (fd): Sink => {
    let open = true
    const write = (bytes: Uint8Array) =>
      attempt(target, "could not write the archive", () => {
        Fs.writeSync(fd, bytes)
        count(bytes.byteLength)
      })
    return {
      staged: archive,
      write: (entry, body) =>
        Effect.gen(function*() {
          const named = { ...entry, path: entry.path === "" ? rootName : `${rootName}/${entry.path}` }
          yield* write(tarHeader(entry.type === "directory" ? { ...named, path: `${named.path}/` } : named))
          if (entry.type !== "file") return
          yield* body.forEachChunk(write)
          yield* write(tarPadding(entry.size))
        }),
      finish: write(tarEnd()),
      release: Effect.sync(() => {
        if (open) Fs.closeSync(fd)
        open = false
      })
    }
  })

/**
 * Write the guest's tar stream of `target.path` to the output, as a tree or a
 * sanitized tar archive. The stream's names are relative to the exported
 * path's parent: its first entry is the exported file or directory itself.
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
    const policy = makeEntryPolicy(limits)
    let root: { readonly name: string; readonly isDirectory: boolean } | undefined
    let sink: Sink | undefined
    let entryCount = 0
    let bytesWritten = 0
    const neutralised: Array<string> = []

    /** The entry relative to the exported root ("" for the root), or why it is not below it. */
    const relative = (name: string): string | undefined => {
      const trimmed = name.replace(/\/+$/, "").replace(/^(\.\/)+/, "")
      if (trimmed === root!.name) return ""
      return trimmed.startsWith(`${root!.name}/`) ? trimmed.slice(root!.name.length + 1) : undefined
    }

    const onEntry = (raw: TarEntry, body: TarEntryBody<E, never>) =>
      Effect.gen(function*() {
        if (CONTROL.test(raw.path) || CONTROL.test(raw.linkname)) {
          return yield* failed(target, "has a control character in its name", raw.path)
        }
        if (root === undefined) {
          const name = raw.path.replace(/\/+$/, "").replace(/^(\.\/)+/, "")
          if ((raw.type !== "file" && raw.type !== "directory") || name === "" || name.includes("/")) {
            return yield* failed(target, "is not the exported file or directory itself", raw.path)
          }
          root = { name, isDirectory: raw.type === "directory" }
          sink = target.format === "tar"
            ? yield* archiveSink(target, Path.join(stagingDir, "export.tar"), name, (n) => (bytesWritten += n))
            : treeSink(target, Path.join(stagingDir, "tree"), root.isDirectory)
        } else if (!root.isDirectory) {
          return yield* failed(target, "is not inside the exported path", raw.path)
        }
        const rel = relative(raw.path)
        if (rel === undefined) return yield* failed(target, "is not inside the exported path", raw.path)
        const linkRel = raw.type === "hardlink" ? relative(raw.linkname) : raw.linkname
        if (linkRel === undefined || (raw.type === "hardlink" && linkRel === "")) {
          return yield* failed(target, "is a hard link to something outside the exported path", raw.path)
        }
        let entry: SafeEntry
        if (rel === "") {
          // The root itself: a file with its content, or the directory that holds the rest.
          entry = { path: "", type: raw.type as "file" | "directory", mode: raw.mode & 0o777, size: raw.size, mtime: Math.max(0, Math.floor(raw.mtime)), linkname: "" }
          if ((raw.mode & 0o6000) !== 0) neutralised.push(target.path)
        } else {
          const verdict = policy.check({ ...raw, path: rel, linkname: linkRel })
          if (verdict._tag === "Skip") return
          if (verdict._tag === "Refuse") return yield* failed(target, verdict.reason, raw.path)
          entry = verdict.entry
          if (verdict.neutralised) neutralised.push(`${target.path}/${rel}`)
        }
        if (rel === "" && entry.size > limits.maxBytes) {
          return yield* failed(target, `is ${entry.size} bytes, more than the ${limits.maxBytes} allowed`, raw.path)
        }
        entryCount++
        if (target.format === "tree" && entry.type === "file") bytesWritten += entry.size
        yield* sink!.write(entry, body)
      })

    const written = Effect.gen(function*() {
      yield* readTar(tar, label, onEntry).pipe(
        Effect.catchIf((e): e is InvalidTar => e instanceof InvalidTar, (e) => Effect.fail(failed(target, `the guest sent a malformed archive: ${e.detail}`)))
      )
      if (root === undefined || sink === undefined) return yield* failed(target, "the guest sent an empty archive")
      yield* sink.finish
      return { staged: sink.staged, root }
    })

    const removeStaging = Effect.sync(() => Fs.rmSync(stagingDir, { recursive: true, force: true }))
    const { root: exported, staged } = yield* written.pipe(
      Effect.ensuring(Effect.suspend(() => sink?.release ?? Effect.void)),
      Effect.onError(() => removeStaging)
    )
    yield* publish(target, staged, stagingDir, target.format === "tree" && exported.isDirectory).pipe(Effect.ensuring(removeStaging))
    return { artifactType: exported.isDirectory ? "directory" : "file", entryCount, bytesWritten, neutralised } as const
  })
