/**
 * workspace_diff: the workspace's /workspace now against the baseline taken
 * when it was created (after its seed), both as the guest's tar streams.
 * Nothing is extracted, so entries are compared as they are (a link by its
 * target's text, a device or FIFO as "other"), with only names checked and
 * counts, sizes and depth bounded: a virtualenv's absolute links are a
 * change like any other. The baseline is indexed first (digests only); the
 * current tree is then streamed, keeping the content only of text files that
 * differ; a second pass over the baseline fetches the old side. Unified
 * patches come from jsdiff, each with a time limit, and all of them within a
 * budget: what did not fit is listed with `in_patch: false`. Without a patch
 * (`patch: false`, for workspace_summary) only the digests are read.
 */
import { createTwoFilesPatch } from "diff"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import { createHash } from "node:crypto"
import { InvalidTar } from "../archive/errors.js"
import { type EntryLimits, normaliseName } from "../archive/policy.js"
import { readTar, type TarEntry, type TarEntryBody } from "../archive/read.js"

/** Files larger than this are compared by digest and listed as binary, never diffed as text. */
export const MAX_DIFF_FILE_BYTES = 1024 * 1024
/** Text held for diffing at once, each side; changes beyond it are listed without patch text. */
const MAX_DIFF_TEXT_BYTES = 64 * 1024 * 1024
/** One file's diff may take this long (jsdiff is quadratic on very different files); then it is left out. */
const FILE_DIFF_MS = 500
/** All of a diff's patches together. */
const TOTAL_DIFF_MS = 5_000
/** Entries a result lists; the summary still counts all. */
export const MAX_DIFF_ENTRIES = 10_000

export type DiffChange = "added" | "modified" | "deleted" | "type_changed"
type Kind = "file" | "directory" | "symlink" | "other"

interface Indexed {
  readonly kind: Kind
  readonly mode: number
  readonly size: number
  /** Content digest (files), or the link's target (symlinks). */
  readonly identity: string
}

export interface DiffEntry {
  readonly path: string
  readonly change: DiffChange
  readonly artifact_type: Kind
  /** Content that is not UTF-8 text (or over 1 MiB): compared by digest, never shown as text. */
  readonly binary: boolean
  /** Its change is in the patch (false for binary content, links, modes, and what was too large to diff). */
  readonly in_patch: boolean
}

export interface TreeDiff {
  readonly entries: ReadonlyArray<DiffEntry>
  readonly total: number
  readonly counts: Readonly<Record<DiffChange | "binary", number>>
  readonly patch: string
}

/** Why a tree could not be compared: malformed, or past its bounds. */
export class TreeUnreadable extends Data.TaggedError("TreeUnreadable")<{ readonly detail: string }> {
  override get message() {
    return this.detail
  }
}

const text = new TextDecoder("utf-8", { fatal: true })

const kindOf = (entry: TarEntry): Kind =>
  entry.type === "hardlink" || entry.type === "file"
    ? "file"
    : entry.type === "directory" || entry.type === "symlink"
    ? entry.type
    : "other"

/**
 * Each entry of a tar stream with its name normalised, within `limits`,
 * without any extraction rule: names that are absolute or hold `..` are
 * malformed (the guest's own tool never writes them).
 */
const readComparable = <SE>(
  source: Stream.Stream<Uint8Array, SE>,
  label: string,
  limits: EntryLimits,
  onEntry: (path: string, entry: TarEntry, body: TarEntryBody<SE, never>) => Effect.Effect<void, SE | InvalidTar | TreeUnreadable>
) =>
  Effect.suspend(() => {
    let entries = 0
    let bytes = 0
    return readTar(source, label, (entry, body) => {
      const name = normaliseName(entry.path)
      if (name._tag === "Unsafe") return Effect.fail(new TreeUnreadable({ detail: `${label}: an entry ${name.problem}` }))
      if (++entries > limits.maxEntries) return Effect.fail(new TreeUnreadable({ detail: `${label}: more than ${limits.maxEntries} entries` }))
      if (name.parts.length > limits.maxDepth) return Effect.fail(new TreeUnreadable({ detail: `${label}: nested more than ${limits.maxDepth} deep` }))
      bytes += entry.size
      if (bytes > limits.maxBytes) return Effect.fail(new TreeUnreadable({ detail: `${label}: more than ${limits.maxBytes} bytes` }))
      return onEntry(name.parts.join("/"), entry, body)
    }).pipe(
      Effect.catchIf((e): e is InvalidTar => e instanceof InvalidTar, (e) => Effect.fail(new TreeUnreadable({ detail: e.message })))
    )
  })

/** A file's digest, and its content too when `keep` and it is small enough to diff. */
const readFile = <SE>(entry: TarEntry, body: TarEntryBody<SE, never>, keep: boolean) =>
  Effect.gen(function*() {
    const chunks: Array<Uint8Array> = []
    const hash = createHash("sha256")
    const holding = keep && entry.size <= MAX_DIFF_FILE_BYTES
    yield* body.forEachChunk((chunk) =>
      Effect.sync(() => {
        hash.update(chunk)
        if (holding) chunks.push(chunk.slice())
      })
    )
    return { digest: hash.digest("hex"), bytes: holding ? Buffer.concat(chunks) : undefined }
  })

/** UTF-8 text without NUL bytes, or undefined for content shown as binary. */
const asText = (bytes: Uint8Array | undefined) => {
  if (bytes === undefined || bytes.includes(0)) return undefined
  try {
    return text.decode(bytes)
  } catch {
    return undefined
  }
}

/** Every directory that holds something in `paths`. */
const parentsOf = (paths: Iterable<string>) => {
  const parents = new Set<string>()
  for (const path of paths) {
    for (let i = path.lastIndexOf("/"); i > 0; i = path.lastIndexOf("/", i - 1)) {
      const parent = path.slice(0, i)
      if (parents.has(parent)) break
      parents.add(parent)
    }
  }
  return parents
}

/**
 * Compare `current` (the guest's tar of /workspace) with `baseline` (the tar
 * kept at create), both within `limits`. `baseline` is a function: it is read
 * twice (once without a patch). Paths come out absolute (`/workspace/...`); the
 * patch names files relative to /workspace (`a/src/x`), as git does, so it
 * applies back.
 */
export const diffTrees = <BE, CE>(
  baseline: () => Stream.Stream<Uint8Array, BE>,
  current: Stream.Stream<Uint8Array, CE>,
  limits: EntryLimits,
  options: { readonly patch: boolean } = { patch: true }
): Effect.Effect<TreeDiff, BE | CE | TreeUnreadable> =>
  Effect.gen(function*() {
    const index = (into: Map<string, Indexed>, path: string, entry: TarEntry, digest: string) => {
      // A hard link points at a file of the same tree: its identity is its target's.
      const linked = entry.type === "hardlink" ? into.get(normalised(entry.linkname)) : undefined
      into.set(path, {
        kind: kindOf(entry),
        mode: entry.mode & 0o7777,
        size: linked?.size ?? entry.size,
        identity: linked?.identity ?? (entry.type === "symlink" ? entry.linkname : digest)
      })
    }

    const before = new Map<string, Indexed>()
    yield* readComparable(baseline(), "the workspace's baseline", limits, (path, entry, body) =>
      entry.type === "file"
        ? Effect.map(readFile(entry, body, false), ({ digest }) => index(before, path, entry, digest))
        : Effect.sync(() => index(before, path, entry, "")))

    const after = new Map<string, Indexed>()
    const newText = new Map<string, Uint8Array>()
    let held = 0
    yield* readComparable(current, "the workspace", limits, (path, entry, body) =>
      Effect.gen(function*() {
        if (entry.type !== "file") return index(after, path, entry, "")
        const { bytes, digest } = yield* readFile(entry, body, options.patch)
        index(after, path, entry, digest)
        if (bytes && before.get(path)?.identity !== digest && held + bytes.byteLength <= MAX_DIFF_TEXT_BYTES) {
          newText.set(path, bytes)
          held += bytes.byteLength
        }
      }))

    const changeOf = (path: string): DiffChange | undefined => {
      const [a, b] = [before.get(path), after.get(path)]
      if (!a) return "added"
      if (!b) return "deleted"
      if (a.kind !== b.kind) return "type_changed"
      if (a.kind === "directory") return a.mode !== b.mode ? "modified" : undefined
      return a.identity !== b.identity || a.mode !== b.mode ? "modified" : undefined
    }
    const [parentsBefore, parentsAfter] = [parentsOf(before.keys()), parentsOf(after.keys())]
    const changes: Array<{ readonly path: string; readonly change: DiffChange }> = []
    const wantOld = new Set<string>()
    for (const path of [...new Set([...before.keys(), ...after.keys()])].sort()) {
      const change = changeOf(path)
      if (!change) continue
      // A directory appearing or going with files in it is told by its files.
      const now = (after.get(path) ?? before.get(path))!
      if (now.kind === "directory" && (change === "added" ? parentsAfter : parentsBefore).has(path) && (change === "added" || change === "deleted")) continue
      changes.push({ path, change })
      if (options.patch && change !== "added" && before.get(path)?.kind === "file") wantOld.add(path)
    }

    const oldText = new Map<string, Uint8Array>()
    if (wantOld.size > 0) {
      let heldOld = 0
      yield* readComparable(baseline(), "the workspace's baseline", limits, (path, entry, body) =>
        Effect.gen(function*() {
          if (entry.type !== "file" || !wantOld.has(path)) return
          const { bytes } = yield* readFile(entry, body, true)
          if (bytes && heldOld + bytes.byteLength <= MAX_DIFF_TEXT_BYTES) {
            oldText.set(path, bytes)
            heldOld += bytes.byteLength
          }
        }))
    }

    const deadline = Date.now() + TOTAL_DIFF_MS
    const patches: Array<string> = []
    const entries = changes.map(({ change, path }): DiffEntry => {
      const [a, b] = [before.get(path), after.get(path)]
      const artifact_type = (b ?? a)!.kind
      const isFile = (i: Indexed | undefined) => i?.kind === "file"
      const entry = { path: `/${path}`, change, artifact_type, binary: false, in_patch: false }
      if (!isFile(a) && !isFile(b)) return entry
      const tooBig = (i: Indexed | undefined) => isFile(i) && i!.size > MAX_DIFF_FILE_BYTES
      const oldSide = isFile(a) ? asText(oldText.get(path)) : ""
      const newSide = isFile(b) ? asText(newText.get(path)) : ""
      if (tooBig(a) || tooBig(b)) return { ...entry, binary: true }
      if (oldSide === undefined || newSide === undefined) {
        // Held content that is not text is binary; content not held (over the 64 MiB hold) is only left out.
        const notText = (isFile(a) && oldText.has(path)) || (isFile(b) && newText.has(path))
        return { ...entry, binary: notText }
      }
      if (oldSide === newSide) return entry // a mode change: nothing to show as text
      const left = Math.min(FILE_DIFF_MS, deadline - Date.now())
      if (left <= 0) return entry
      // Relative to /workspace, git style, so that workspace_patch_apply takes the patch back.
      const name = path.replace(/^workspace\//, "")
      const patch = createTwoFilesPatch(isFile(a) ? `a/${name}` : "/dev/null", isFile(b) ? `b/${name}` : "/dev/null", oldSide, newSide, "", "", {
        context: 3,
        timeout: left
      })
      if (patch === undefined) return entry
      patches.push(patch.replace(/^=+\n/, "").replace(/^(---|\+\+\+) (.*)\t$/gm, "$1 $2"))
      return { ...entry, in_patch: true }
    })
    const count = (change: DiffChange) => entries.filter((e) => e.change === change).length
    return {
      entries: entries.slice(0, MAX_DIFF_ENTRIES),
      total: entries.length,
      counts: {
        added: count("added"),
        modified: count("modified"),
        deleted: count("deleted"),
        type_changed: count("type_changed"),
        binary: entries.filter((e) => e.binary).length
      },
      patch: patches.join("")
    }
  })

const normalised = (name: string) => {
  const n = normaliseName(name)
  return n._tag === "Name" ? n.parts.join("/") : name
}
