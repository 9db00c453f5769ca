/**
 * The files on a stopped workspace's disk, by guest path. The disk is the
 * overlay's upper layer (guest/agent/attach.c): `/upper` holds every file the
 * guest created or changed since its environment's image (all of /workspace,
 * since the image has none there), `/work` is overlayfs's own. A guest path P
 * is `/upper/P` on the disk; a file of the image the guest never touched is not
 * on it at all, and one it deleted is a whiteout.
 *
 * Paths are walked one directory at a time by inode number (./debugfs.ts);
 * links on the disk are listed, never followed.
 */
import * as Effect from "effect/Effect"
import { WorkspaceFileError, type WorkspaceFileProblem } from "../../contract/errors.js"
import { MAX_WORKSPACE_PATH_BYTES } from "../../contract/workspace/paths.js"
import { Cursor, type DirEntry, expectEcho, inodeFacts, type InodeFacts, parseInodeDump, parseListing } from "./answer.js"
import { complaintOf, type DebugfsFailed, runDebugfs } from "./debugfs.js"

const ROOT_INODE = 2
/** Where the guest's writable layer is on the disk. */
const UPPER = "upper"
/** One run's answer is held up to this (a listing beyond it is cut, and says so). */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024
/** Requests per run: inode dumps are ~1 KiB of answer each. */
const BATCH = 2048
const MAX_DEPTH = 128
/** A link's target is at most a page. */
const MAX_LINK_BYTES = 4096

export interface DiskTarget {
  readonly workspaceId: string
  readonly operation: string
  readonly path: string
  readonly image: string
  readonly inodeSize: number
}

export interface DiskEntry {
  readonly path: string
  readonly ino: number
  readonly facts: InodeFacts
  readonly linkTarget?: string
}

const names = new TextDecoder("utf-8", { fatal: false })

export const diskError = (target: DiskTarget, problem: WorkspaceFileProblem, detail: string) =>
  new WorkspaceFileError({ workspaceId: target.workspaceId, operation: target.operation, path: target.path, problem, detail })

const unreadable = (target: DiskTarget) => (e: DebugfsFailed) => diskError(target, "failed", `cannot read the disk: ${e.detail}`)
const malformed = (target: DiskTarget, what: string, stderr: string) =>
  diskError(target, "failed", `debugfs's answer is malformed (${what})${complaintOf(stderr) ? `: ${complaintOf(stderr)}` : ""}`)

/** Each request's answer, parsed by `parse` in order; runs of at most BATCH requests. */
const batched = <T>(
  target: DiskTarget,
  requests: ReadonlyArray<string>,
  parse: (c: Cursor, cut: boolean, index: number) => T | undefined,
  cutAtMax = false
) =>
  Effect.gen(function*() {
    const out: Array<T> = []
    for (let from = 0; from < requests.length; from += BATCH) {
      const chunk = requests.slice(from, from + BATCH)
      const run = yield* runDebugfs(target.image, chunk, MAX_ANSWER_BYTES, cutAtMax).pipe(Effect.mapError(unreadable(target)))
      const c = new Cursor(run.stdout)
      for (let i = 0; i < chunk.length; i++) {
        if (run.cut && c.done) return { answers: out, cut: true }
        // A run cut at its bound may end anywhere: what was read whole stands.
        const echoed = expectEcho(c, chunk[i]!)
        const answer = echoed ? parse(c, run.cut, from + i) : undefined
        if (answer === undefined && run.cut) return { answers: out, cut: true }
        if (answer === undefined) return yield* malformed(target, `the answer to ${chunk[i]}`, run.stderr)
        out.push(answer)
      }
      if (run.cut) return { answers: out, cut: true }
    }
    return { answers: out, cut: false }
  })

const listDirs = (target: DiskTarget, inodes: ReadonlyArray<number>) =>
  batched(target, inodes.map((ino) => `ls -p <${ino}>`), (c, cut) => parseListing(c, cut), true)

const factsOf = (target: DiskTarget, inodes: ReadonlyArray<number>) =>
  Effect.map(
    batched(target, inodes.map((ino) => `inode_dump <${ino}>`), (c) => {
      const inode = parseInodeDump(c, target.inodeSize)
      return inode && inodeFacts(inode)
    }),
    (r) => r.answers
  )

/** Targets of links too long to live in their inode: `cat`, exactly as many bytes as the inode says. */
const linkTargets = (target: DiskTarget, links: ReadonlyArray<{ readonly ino: number; readonly size: number }>) =>
  Effect.map(
    batched(target, links.map((l) => `cat <${l.ino}>`), (c, _, i) => c.take(links[i]!.size)),
    (r) => r.answers
  )

/** The entry at `path` (a guest path), or not_found; every directory on the way must be one. */
export const resolvePath = (target: DiskTarget, path: string) =>
  Effect.gen(function*() {
    const parts = [UPPER, ...path.split("/").filter((p) => p !== "")]
    let ino = ROOT_INODE
    for (const [i, part] of parts.entries()) {
      const { answers, cut } = yield* listDirs(target, [ino])
      if (cut) return yield* diskError(target, "too_large", "a directory on the way is too large to read")
      const wanted = Buffer.from(part)
      const found: DirEntry | undefined = answers[0]!.entries.find((e) => Buffer.from(e.name).equals(wanted))
      const where = i === 0 ? "the disk holds no writable layer yet" : `${parts.slice(1, i + 1).join("/")} is not on the disk`
      if (!found) {
        return yield* diskError(
          target,
          "not_found",
          `${where}: only files created or changed since the environment's image are on a workspace's disk`
        )
      }
      if (i < parts.length - 1 && (found.mode & 0o170000) !== 0o040000) {
        return yield* diskError(target, "wrong_type", `/${parts.slice(1, i + 1).join("/")} is not a directory on the disk`)
      }
      ino = found.ino
    }
    const [facts] = yield* factsOf(target, [ino])
    if (facts!.type === "whiteout") {
      return yield* diskError(target, "not_found", "it was deleted (the disk holds its whiteout)")
    }
    return { ino, facts: facts! }
  })

/**
 * The entries below the directory at `ino` (`path`), every level with
 * `recursive`, at most `maxEntries` (then `truncated`), sorted by path. A
 * directory seen twice (a loop on a damaged disk) is listed once.
 */
export const listTree = (target: DiskTarget, ino: number, path: string, recursive: boolean, maxEntries: number) =>
  Effect.gen(function*() {
    const found: Array<{ readonly path: string; readonly ino: number }> = []
    const seen = new Set([ino])
    let level: Array<{ readonly path: string; readonly ino: number }> = [{ path, ino }]
    let truncated = false
    for (let depth = 0; level.length > 0 && !truncated && depth < MAX_DEPTH; depth++) {
      const { answers, cut } = yield* listDirs(target, level.map((d) => d.ino))
      truncated = cut
      const next: typeof level = []
      for (const [i, listing] of answers.entries()) {
        truncated ||= !listing.complete
        for (const entry of listing.entries) {
          const parent = level[i]!.path
          const childPath = `${parent === "/" ? "" : parent}/${names.decode(entry.name)}`
          if (Buffer.byteLength(childPath) > MAX_WORKSPACE_PATH_BYTES) continue
          if (found.length >= maxEntries) {
            truncated = true
            break
          }
          found.push({ path: childPath, ino: entry.ino })
          if (recursive && (entry.mode & 0o170000) === 0o040000 && !seen.has(entry.ino)) {
            seen.add(entry.ino)
            next.push({ path: childPath, ino: entry.ino })
          }
        }
      }
      level = next
    }
    const facts = yield* factsOf(target, found.map((f) => f.ino))
    const entries = found.map((f, i): DiskEntry => ({ ...f, facts: facts[i]! }))
    const longLinks = entries.filter((e) => e.facts.type === "symlink" && !e.facts.inlineTarget && e.facts.size <= MAX_LINK_BYTES)
    const targets = yield* linkTargets(target, longLinks.map((e) => ({ ino: e.ino, size: e.facts.size })))
    const longTarget = new Map(longLinks.map((e, i) => [e.ino, targets[i]!]))
    return {
      entries: entries.map((e): DiskEntry => {
        const bytes = e.facts.inlineTarget ?? longTarget.get(e.ino)
        return bytes ? { ...e, linkTarget: names.decode(bytes) } : e
      }).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
      truncated
    }
  })

/** Up to `maxBytes` of the regular file at `ino` (its `size` known). */
export const readDiskFile = (target: DiskTarget, ino: number, size: number, maxBytes: number) =>
  Effect.gen(function*() {
    const request = `cat <${ino}>`
    const want = Math.min(size, maxBytes)
    const run = yield* runDebugfs(target.image, [request], `debugfs: ${request}\n`.length + want, true).pipe(
      Effect.mapError(unreadable(target))
    )
    const c = new Cursor(run.stdout)
    if (!expectEcho(c, request)) return yield* malformed(target, "no answer to the read", run.stderr)
    return c.bytes.subarray(c.at)
  })
