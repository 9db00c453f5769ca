/** File operations that must never leave a half-written result where a reader could find it. */
import { SystemError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"

/**
 * Write `contents` to `path` atomically: temp file, fsync, rename. Blocking
 * calls: records are rewritten around every workspace command, and five trips
 * through the thread pool cost more than the fsync itself. `durable: false`
 * skips the fsync, for records of what a power loss ends anyway (a one-shot VM,
 * a spare): the rename alone keeps them whole for any process that reads them.
 */
export const writeFileAtomic = (path: string, contents: string | Uint8Array, mode = 0o644, durable = true) =>
  Effect.try({
    try: () => {
      const tmp = `${path}.${process.pid}.${Crypto.randomBytes(4).toString("hex")}.tmp`
      try {
        const fd = Fs.openSync(tmp, "w", mode)
        try {
          Fs.writeFileSync(fd, contents)
          if (durable) Fs.fsyncSync(fd)
        } finally {
          Fs.closeSync(fd)
        }
        Fs.renameSync(tmp, path)
      } catch (e) {
        Fs.rmSync(tmp, { force: true })
        throw e
      }
    },
    catch: (e) => systemError("writeFileAtomic", path, e as NodeJS.ErrnoException)
  })

/** A failed blocking call, typed as the platform's FileSystem reports its own. */
const systemError = (method: string, path: string, e: NodeJS.ErrnoException) =>
  new SystemError({
    reason: e.code === "ENOENT"
      ? "NotFound"
      : e.code === "EACCES" || e.code === "EPERM"
      ? "PermissionDenied"
      : e.code === "EEXIST"
      ? "AlreadyExists"
      : "Unknown",
    module: "FileSystem",
    method,
    pathOrDescriptor: path,
    ...(e.syscall ? { syscall: e.syscall } : {}),
    description: e.message,
    cause: e
  })

/** Mount points at or below `dir` (from /proc/self/mountinfo, its octal escapes undone). */
export const mountsUnder = (dir: string): Array<string> => {
  let table: string
  try {
    table = Fs.readFileSync("/proc/self/mountinfo", "utf8")
  } catch {
    return []
  }
  // The table names real paths: a link on the way (a /tmp that is one) must not hide a mount.
  let root: string
  try {
    root = Fs.realpathSync(dir)
  } catch {
    root = Path.resolve(dir)
  }
  return table.split("\n").flatMap((line) => {
    const field = line.split(" ")[4]
    if (field === undefined) return []
    const point = field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
    return point === root || point.startsWith(`${root}/`) ? [point] : []
  })
}

/**
 * Remove a tree pyro made, unless something is still mounted inside it: a debian
 * build killed before mmdebstrap unmounted its chroot's binds of the host's /dev
 * files, /proc and /sys would otherwise have the removal reach into the host's. Such
 * a tree is left as it is, for a later sweep (`removeStalePartials`) once unmounted.
 */
export const removeTree = (dir: string) =>
  Effect.gen(function*() {
    if (mountsUnder(dir).length > 0) return false
    yield* (yield* FileSystem.FileSystem).remove(dir, { recursive: true })
    return true
  })

/** A fresh directory beside `parent`'s other entries, removed with its contents when `use` ends (unless a mount is left inside: `removeTree`). */
export const withTempDir = <A, E, R>(parent: string, label: string, use: (dir: string) => Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* fs.makeDirectory(parent, { recursive: true })
    const dir = Path.join(parent, `${label}.partial-${process.pid}-${Crypto.randomBytes(4).toString("hex")}`)
    return yield* Effect.acquireUseRelease(
      fs.makeDirectory(dir),
      () => use(dir),
      () => Effect.ignore(removeTree(dir))
    )
  })

/**
 * Build a directory aside and rename it into place, so `target` either does
 * not exist or is complete. If another process installed it first, ours is
 * discarded and theirs kept. The aside directory is removed on any failure or
 * interruption.
 */
export const installDirectory = <E, R>(target: string, build: (dir: string) => Effect.Effect<void, E, R>) =>
  withTempDir(Path.dirname(target), Path.basename(target), (aside) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      yield* build(aside)
      const renamed = yield* Effect.either(fs.rename(aside, target))
      if (Either.isLeft(renamed) && !(yield* fs.exists(target))) return yield* renamed.left
    }))

/** Remove leftovers of interrupted installs (`*.partial-<pid>-*`) whose process is gone. */
export const removeStalePartials = (dir: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const names = yield* fs.readDirectory(dir).pipe(Effect.orElseSucceed(() => []))
    for (const name of names) {
      const match = /\.partial-(\d+)-[0-9a-f]+$/.exec(name)
      if (!match || Fs.existsSync(`/proc/${match[1]}`)) continue
      yield* Effect.ignore(removeTree(Path.join(dir, name)))
    }
  })

/** A file's sha256 (hex) and size, streamed. */
export const hashFile = (path: string) =>
  Effect.async<{ readonly sha256: string; readonly size: number }, Error>((resume) => {
    const hash = Crypto.createHash("sha256")
    let size = 0
    const input = Fs.createReadStream(path)
    input.on("data", (chunk) => {
      size += chunk.length
      hash.update(chunk)
    })
    input.on("error", (err) => resume(Effect.fail(err)))
    input.on("end", () => resume(Effect.succeed({ sha256: hash.digest("hex"), size })))
    return Effect.sync(() => input.destroy())
  })

export const sha256File = (path: string) => Effect.map(hashFile(path), (h) => h.sha256)

export const sha256 = (data: Uint8Array | string) => Crypto.createHash("sha256").update(data).digest("hex")

/** Write a stream's bytes to a new file (never an existing one), closing it whatever happens. */
export const writeStreamToFile = <E, R>(stream: Stream.Stream<Uint8Array, E, R>, path: string, mode = 0o600) =>
  Effect.acquireUseRelease(
    Effect.sync(() => Fs.openSync(path, "wx", mode)),
    (fd) => Stream.runForEach(stream, (chunk) => Effect.sync(() => void Fs.writeSync(fd, chunk))),
    (fd) => Effect.sync(() => Fs.closeSync(fd))
  )
