/**
 * Directory sources: the tree under `root` walked with lstat (symlinks are
 * entries, never followed), names sorted, each directory before its contents,
 * the root itself left out. Every entry goes through the path policy
 * (./policy.ts) in walk order. Hard links inside the tree come out as separate regular files.
 *
 * Regular files are opened without following symlinks or blocking on a FIFO,
 * checked to be the same inode the walk saw, and (on Linux) checked through
 * /proc/self/fd to really live where the walk expects: a directory of the
 * tree swapped for a symlink mid-walk cannot make the host read a file from
 * elsewhere. Their content is read as the consumer pulls.
 *
 * A walk may take only some entries (`WalkSelection`: a project's tracked
 * files); a directory it does not take is not entered, and what it takes
 * still goes through the policy.
 */
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as Fs from "node:fs"
import { constants as FsConstants } from "node:fs"
import * as FsP from "node:fs/promises"
import { RefusedEntry, SourceError } from "./errors.js"
import { type EntryInput, type EntryLimits, type EntryPolicy, type EntryType, makeEntryPolicy, type SafeEntry } from "./policy.js"
import { errorText, io } from "./sourceIo.js"
import { tarEnd, tarHeader, tarPadding } from "./write.js"

/** One entry of the tree as the walk saw it. */
export interface WalkedEntry {
  /** Relative to the root, "/"-separated. */
  readonly rel: string
  readonly abs: string
  readonly stat: Fs.Stats
}

const entryType = (stat: Fs.Stats): EntryType =>
  stat.isFile()
    ? "file"
    : stat.isDirectory()
    ? "directory"
    : stat.isSymbolicLink()
    ? "symlink"
    : stat.isCharacterDevice()
    ? "character-device"
    : stat.isBlockDevice()
    ? "block-device"
    : stat.isFIFO()
    ? "fifo"
    : "socket"

/** Which entries a walk takes, by relative path and lstat; a directory not taken is not entered. */
export type WalkSelection = (rel: string, stat: Fs.Stats) => boolean

const EVERY_ENTRY: WalkSelection = () => true

/** Every entry under `root` (the root excluded) that `select` takes, depth first, sorted, lazily. */
export const walkDirectory = (
  source: string,
  root: string,
  select: WalkSelection = EVERY_ENTRY
): Stream.Stream<WalkedEntry, SourceError> => {
  const walk = (rel: string): Stream.Stream<WalkedEntry, SourceError> =>
    Stream.unwrap(
      io(source, `cannot list ${rel === "" ? "the directory" : JSON.stringify(rel)}`, () =>
        FsP.readdir(rel === "" ? root : `${root}/${rel}`)).pipe(
          Effect.map((names) =>
            Stream.fromIterable([...names].sort()).pipe(
              Stream.mapEffect((name) => {
                const childRel = rel === "" ? name : `${rel}/${name}`
                const abs = `${root}/${childRel}`
                return io(source, `cannot lstat ${JSON.stringify(childRel)}`, () => FsP.lstat(abs)).pipe(
                  Effect.map((stat): WalkedEntry => ({ rel: childRel, abs, stat }))
                )
              }),
              Stream.filter((entry) => select(entry.rel, entry.stat)),
              Stream.flatMap((entry) =>
                entry.stat.isDirectory()
                  ? Stream.concat(Stream.succeed(entry), walk(entry.rel))
                  : Stream.succeed(entry)
              )
            )
          )
        )
    )
  return walk("")
}

const inputOf = (entry: WalkedEntry, stat: Fs.Stats, linkname: string): EntryInput => ({
  path: entry.rel,
  type: entryType(stat),
  mode: stat.mode & 0o7777,
  size: stat.isFile() ? stat.size : 0,
  mtime: stat.mtimeMs / 1000,
  linkname
})

export interface CheckedEntry {
  readonly entry: SafeEntry
  readonly neutralised: boolean
}

/** Run the policy on what lstat (and readlink) say about `entry`. */
const checkWalked = (
  source: string,
  policy: EntryPolicy,
  entry: WalkedEntry,
  stat: Fs.Stats = entry.stat
): Effect.Effect<CheckedEntry | undefined, RefusedEntry | SourceError> =>
  Effect.gen(function*() {
    const linkname = stat.isSymbolicLink()
      ? yield* io(source, `cannot read the symlink ${JSON.stringify(entry.rel)}`, () => FsP.readlink(entry.abs))
      : ""
    const verdict = policy.check(inputOf(entry, stat, linkname))
    switch (verdict._tag) {
      case "Skip":
        return undefined
      case "Refuse":
        return yield* new RefusedEntry({ source, entry: entry.rel, reason: verdict.reason })
      case "Accept":
        return { entry: verdict.entry, neutralised: verdict.neutralised }
    }
  })

const changed = (source: string, entry: WalkedEntry, detail: string) =>
  new SourceError({ source, detail: `${JSON.stringify(entry.rel)} changed while being read: ${detail}` })

/** Where an open descriptor really points, when /proc tells (Linux); undefined elsewhere. */
const descriptorPath = (fd: number) =>
  Effect.promise(() => FsP.readlink(`/proc/self/fd/${fd}`).then((p) => p as string | undefined, () => undefined))

const FILE_FLAGS = FsConstants.O_RDONLY | FsConstants.O_NOFOLLOW | FsConstants.O_NONBLOCK
const READ_CHUNK = 64 * 1024

/**
 * A regular file's tar entry: header, content read from an open descriptor as
 * the consumer pulls, padding. The header comes from the open file's fstat;
 * content that then comes up short fails the stream (a tar entry cannot be
 * shortened once its header is out); content that grew is cut at that size.
 */
const fileEntryStream = (
  source: string,
  policy: EntryPolicy,
  walked: WalkedEntry
): Stream.Stream<Uint8Array, RefusedEntry | SourceError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const handle = yield* Effect.acquireRelease(
      io(source, `cannot open ${JSON.stringify(walked.rel)}`, () => FsP.open(walked.abs, FILE_FLAGS)),
      (h) => Effect.promise(() => h.close().catch(() => undefined))
    )
    const stat = yield* io(source, `cannot stat ${JSON.stringify(walked.rel)}`, () => handle.stat())
    if (stat.ino !== walked.stat.ino || stat.dev !== walked.stat.dev) {
      return yield* changed(source, walked, "it was replaced")
    }
    const real = yield* descriptorPath(handle.fd)
    if (real !== undefined && real !== walked.abs) {
      return yield* changed(source, walked, `it was opened at ${JSON.stringify(real)} (a directory replaced by a symlink?)`)
    }
    const checked = yield* checkWalked(source, policy, walked, stat)
    if (checked === undefined) return Stream.empty
    const { entry } = checked
    const header = Stream.succeed(tarHeader(entry))
    if (entry.size === 0) return header
    let read = 0
    const content = NodeStream.fromReadable<SourceError, Uint8Array>(
      () => handle.createReadStream({ start: 0, end: entry.size - 1, autoClose: false, highWaterMark: READ_CHUNK }),
      (error) => new SourceError({ source, detail: `cannot read ${JSON.stringify(walked.rel)}: ${errorText(error)}` }),
      { chunkSize: READ_CHUNK }
    ).pipe(Stream.tap((chunk) => Effect.sync(() => void (read += chunk.byteLength))))
    const complete = Stream.fromEffect(Effect.suspend(() =>
      read === entry.size
        ? Effect.succeed(tarPadding(entry.size))
        : Effect.fail(changed(source, walked, `it shrank from ${entry.size} to ${read} bytes`))
    ))
    return Stream.concat(header, Stream.concat(content, complete))
  }))

/** The tar bytes of one walked entry, checked by the policy when the consumer reaches it. */
const walkedEntryStream = (
  source: string,
  policy: EntryPolicy,
  walked: WalkedEntry
): Stream.Stream<Uint8Array, RefusedEntry | SourceError> =>
  walked.stat.isFile()
    ? fileEntryStream(source, policy, walked)
    : Stream.unwrap(
      checkWalked(source, policy, walked).pipe(
        Effect.map((checked) => (checked === undefined ? Stream.empty : Stream.succeed(tarHeader(checked.entry))))
      )
    )

/** The sanitized tar stream of the tree under `root`, checked and read as the consumer pulls. */
export const directoryTar = (
  source: string,
  root: string,
  limits: EntryLimits,
  select: WalkSelection = EVERY_ENTRY
): Stream.Stream<Uint8Array, RefusedEntry | SourceError> =>
  Stream.suspend(() => {
    const policy = makeEntryPolicy(limits)
    return Stream.concat(
      Stream.flatMap(walkDirectory(source, root, select), (walked) => walkedEntryStream(source, policy, walked)),
      Stream.succeed(tarEnd())
    )
  })

/** One checking pass over the tree under `root`, nothing read but metadata: `onEntry` gets each accepted entry. */
export const checkDirectory = (
  source: string,
  root: string,
  limits: EntryLimits,
  onEntry: (checked: CheckedEntry) => void,
  select: WalkSelection = EVERY_ENTRY
): Effect.Effect<void, RefusedEntry | SourceError> =>
  Effect.suspend(() => {
    const policy = makeEntryPolicy(limits)
    return Stream.runForEach(walkDirectory(source, root, select), (walked) =>
      checkWalked(source, policy, walked).pipe(
        Effect.map((checked) => {
          if (checked !== undefined) onEntry(checked)
        })
      ))
  })
