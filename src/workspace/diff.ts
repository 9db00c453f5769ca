/**
 * workspace_diff: the workspace's /workspace now against the baseline taken
 * when it was created (after its seed), both as the guest's tar streams read
 * through the archive policy. The baseline is indexed first (digests only);
 * the current tree is then streamed, keeping the content only of text files
 * that differ; a second pass over the baseline fetches the old side of
 * those. Unified patches come from jsdiff, not by hand.
 */
import { createTwoFilesPatch } from "diff"
import * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import { createHash } from "node:crypto"
import { readCheckedTar } from "../archive/checked.js"
import type { EntryLimits, SafeEntry } from "../archive/policy.js"
import type { TarEntryBody } from "../archive/read.js"

/** Files larger than this are compared by digest and listed as binary, never diffed as text. */
export const MAX_DIFF_FILE_BYTES = 1024 * 1024
/** Text held for diffing at once, each side; changes beyond it are listed without patch text. */
const MAX_DIFF_TEXT_BYTES = 64 * 1024 * 1024

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
  readonly binary: boolean
}

export interface TreeDiff {
  readonly entries: ReadonlyArray<DiffEntry>
  readonly patch: string
}

const kindOf = (entry: SafeEntry): Kind => (entry.type === "hardlink" ? "file" : entry.type)
const text = new TextDecoder("utf-8", { fatal: true })

/** A file's digest, and its content too when `keep` and it is small enough to diff. */
const readFile = <SE>(entry: SafeEntry, body: TarEntryBody<SE, never>, keep: boolean) =>
  Effect.gen(function*() {
    const chunks: Array<Uint8Array> = []
    const hash = createHash("sha256")
    yield* body.forEachChunk((chunk) =>
      Effect.sync(() => {
        hash.update(chunk)
        if (keep && entry.size <= MAX_DIFF_FILE_BYTES) chunks.push(chunk.slice())
      })
    )
    return { digest: hash.digest("hex"), bytes: keep && entry.size <= MAX_DIFF_FILE_BYTES ? Buffer.concat(chunks) : undefined }
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

/**
 * Compare `current` (the guest's tar of /workspace) with `baseline` (the tar
 * kept at create), both read with `limits`. `baseline` is a function: it is
 * read twice.
 */
export const diffTrees = <BE, CE>(
  baseline: () => Stream.Stream<Uint8Array, BE>,
  current: Stream.Stream<Uint8Array, CE>,
  limits: EntryLimits
) =>
  Effect.gen(function*() {
    // Hard links point at files of the same tree: their identity is their target's.
    const index = (into: Map<string, Indexed>, entry: SafeEntry, digest: string) => {
      const linked = entry.type === "hardlink" ? into.get(entry.linkname) : undefined
      into.set(entry.path, {
        kind: kindOf(entry),
        mode: entry.mode,
        size: linked?.size ?? entry.size,
        identity: linked?.identity ?? (entry.type === "symlink" ? entry.linkname : digest)
      })
    }

    const before = new Map<string, Indexed>()
    yield* readCheckedTar(baseline(), "the workspace's baseline", limits, (entry, _n, body) =>
      entry.type === "file"
        ? Effect.map(readFile(entry, body, false), ({ digest }) => index(before, entry, digest))
        : Effect.sync(() => index(before, entry, ""))
    )

    const after = new Map<string, Indexed>()
    const newText = new Map<string, Uint8Array>()
    let held = 0
    yield* readCheckedTar(current, "the workspace", limits, (entry, _n, body) =>
      Effect.gen(function*() {
        if (entry.type !== "file") return index(after, entry, "")
        const { digest, bytes } = yield* readFile(entry, body, true)
        index(after, entry, digest)
        const old = before.get(entry.path)
        if (bytes && old?.identity !== digest && held + bytes.byteLength <= MAX_DIFF_TEXT_BYTES) {
          newText.set(entry.path, bytes)
          held += bytes.byteLength
        }
      }))

    const entries: Array<DiffEntry> = []
    const wantOld = new Set<string>()
    const changeOf = (path: string): DiffChange | undefined => {
      const [a, b] = [before.get(path), after.get(path)]
      if (!a) return "added"
      if (!b) return "deleted"
      if (a.kind !== b.kind) return "type_changed"
      if (a.kind === "directory") return a.mode !== b.mode ? "modified" : undefined
      return a.identity !== b.identity || a.mode !== b.mode ? "modified" : undefined
    }
    for (const path of [...new Set([...before.keys(), ...after.keys()])].sort()) {
      const change = changeOf(path)
      if (!change) continue
      const now = after.get(path) ?? before.get(path)!
      // A directory appearing or going is told by the files in it; alone it is only listed.
      if (now.kind === "directory" && change !== "type_changed" && change !== "modified" && hasChildren(path, change === "added" ? after : before)) {
        continue
      }
      entries.push({ path: `/${path}`, change, artifact_type: now.kind, binary: false })
      if (change !== "added" && before.get(path)?.kind === "file") wantOld.add(path)
    }

    const oldText = new Map<string, Uint8Array>()
    if (wantOld.size > 0) {
      let heldOld = 0
      yield* readCheckedTar(baseline(), "the workspace's baseline", limits, (entry, _n, body) =>
        Effect.gen(function*() {
          if (entry.type !== "file" || !wantOld.has(entry.path)) return
          const { bytes } = yield* readFile(entry, body, true)
          if (bytes && heldOld + bytes.byteLength <= MAX_DIFF_TEXT_BYTES) {
            oldText.set(entry.path, bytes)
            heldOld += bytes.byteLength
          }
        }))
    }

    const patches: Array<string> = []
    const withPatch = entries.map((entry): DiffEntry => {
      const path = entry.path.slice(1)
      const [a, b] = [before.get(path), after.get(path)]
      const isFile = (i: Indexed | undefined) => i?.kind === "file"
      if (!isFile(a) && !isFile(b)) return entry
      const oldSide = isFile(a) ? asText(oldText.get(path)) : ""
      const newSide = isFile(b) ? asText(newText.get(path)) : ""
      if (oldSide === undefined || newSide === undefined) return { ...entry, binary: true }
      if (oldSide === newSide) return entry // a mode change: nothing to show as text
      patches.push(
        createTwoFilesPatch(isFile(a) ? `a/${path}` : "/dev/null", isFile(b) ? `b/${path}` : "/dev/null", oldSide, newSide, "", "", {
          context: 3
        }).replace(/^=+\n/, "")
      )
      return entry
    })
    return { entries: withPatch, patch: patches.join("") } satisfies TreeDiff
  })

const hasChildren = (dir: string, tree: Map<string, Indexed>) => {
  const prefix = `${dir}/`
  for (const path of tree.keys()) if (path.startsWith(prefix)) return true
  return false
}
