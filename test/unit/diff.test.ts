/** workspace_diff's comparison (src/workspace/diff.ts) over two tar streams, as the guest sends them. */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { UNBOUNDED } from "../../src/archive/policy.js"
import { tarEnd, tarEntry, type TarWriterEntry } from "../../src/archive/write.js"
import * as Either from "effect/Either"
import { diffTrees } from "../../src/workspace/diff.js"
import { applyFilePatch, parseWorkspacePatch } from "../../src/workspace/patch.js"

const entry = (path: string, type: TarWriterEntry["type"], extra: Partial<TarWriterEntry> = {}) =>
  ({ path, type, mode: type === "directory" ? 0o755 : 0o644, size: 0, mtime: 1_700_000_000, linkname: "", ...extra }) as TarWriterEntry
const file = (path: string, content: string | Uint8Array, mode = 0o644) => {
  const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content
  return tarEntry(entry(path, "file", { size: bytes.byteLength, mode }), bytes)
}
const dir = (path: string) => tarEntry(entry(path, "directory"))
const tar = (...parts: Array<Uint8Array>) => Stream.make(Buffer.concat([...parts, tarEnd()]))

describe("workspace diff", () => {
  it.effect("an unchanged tree has no entries and no patch", () =>
    Effect.gen(function*() {
      const parts = [dir("workspace/"), file("workspace/a.txt", "a\n")]
      const diff = yield* diffTrees(() => tar(...parts), tar(...parts), UNBOUNDED)
      expect(diff).toMatchObject({ entries: [], total: 0, patch: "" })
    }))

  it.effect("tells added, modified, deleted, type changed and binary apart, with a unified patch of the text", () =>
    Effect.gen(function*() {
      const baseline = () =>
        tar(
          dir("workspace/"),
          file("workspace/keep.txt", "same\n"),
          file("workspace/edit.txt", "one\ntwo\nthree\n"),
          file("workspace/gone.txt", "bye\n"),
          file("workspace/thing", "was a file\n"),
          file("workspace/img.bin", new Uint8Array([0, 1, 2]))
        )
      const current = tar(
        dir("workspace/"),
        file("workspace/keep.txt", "same\n"),
        file("workspace/edit.txt", "one\nTWO\nthree\n"),
        dir("workspace/thing/"),
        file("workspace/thing/inside", "now a directory\n"),
        file("workspace/img.bin", new Uint8Array([0, 1, 3])),
        dir("workspace/new/"),
        file("workspace/new/file.txt", "hello\n"),
        // A virtualenv's link to an absolute path is a change like any other, never a refusal.
        tarEntry(entry("workspace/venv", "symlink", { linkname: "/usr/bin/python3" }))
      )
      const diff = yield* diffTrees(baseline, current, UNBOUNDED)
      expect(diff.entries).toEqual([
        { path: "/workspace/edit.txt", change: "modified", artifact_type: "file", binary: false, in_patch: true },
        { path: "/workspace/gone.txt", change: "deleted", artifact_type: "file", binary: false, in_patch: true },
        { path: "/workspace/img.bin", change: "modified", artifact_type: "file", binary: true, in_patch: false },
        { path: "/workspace/new/file.txt", change: "added", artifact_type: "file", binary: false, in_patch: true },
        { path: "/workspace/thing", change: "type_changed", artifact_type: "directory", binary: false, in_patch: true },
        { path: "/workspace/thing/inside", change: "added", artifact_type: "file", binary: false, in_patch: true },
        { path: "/workspace/venv", change: "added", artifact_type: "symlink", binary: false, in_patch: false }
      ])
      expect(diff.counts).toEqual({ added: 3, modified: 2, deleted: 1, type_changed: 1, binary: 1 })
      expect(diff.patch).toContain("--- a/edit.txt\n+++ b/edit.txt\n")
      expect(diff.patch).toContain("-two\n+TWO\n")
      expect(diff.patch).toContain("+++ /dev/null")
      expect(diff.patch).toContain("--- /dev/null\n+++ b/new/file.txt")
      expect(diff.patch).toContain("--- a/thing\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-was a file\n")
      expect(diff.patch).not.toContain("img.bin")
      expect(diff.patch).not.toContain("====")

      // Without a patch (workspace_summary): the same changes and counts of them, the baseline read once.
      let baselineReads = 0
      const bare = yield* diffTrees(() => (baselineReads++, baseline()), current, UNBOUNDED, { patch: false })
      expect(bare.entries.map(({ change, path }) => [path, change])).toEqual(diff.entries.map(({ change, path }) => [path, change]))
      expect(bare.total).toBe(diff.total)
      expect(bare.patch).toBe("")
      expect(baselineReads).toBe(1)
    }))

  it.effect("its patch applies back with workspace_patch_apply's parser", () =>
    Effect.gen(function*() {
      const diff = yield* diffTrees(
        () => tar(dir("workspace/"), file("workspace/a.txt", "one\n")),
        tar(dir("workspace/"), file("workspace/a.txt", "two\n")),
        UNBOUNDED
      )
      const [parsed] = Either.getOrThrow(parseWorkspacePatch(diff.patch))
      expect(parsed!.path).toBe("/workspace/a.txt")
      expect(applyFilePatch(parsed!, "one\n")).toEqual(Either.right("two\n"))
    }))

  it.effect("lists 20,000 new directories (each scanned once, not against every other), the first 10,000 of them", () =>
    Effect.gen(function*() {
      const dirs = Array.from({ length: 20_000 }, (_, i) => dir(`workspace/d${i}/`))
      const diff = yield* diffTrees(() => tar(dir("workspace/")), tar(dir("workspace/"), ...dirs), UNBOUNDED)
      expect(diff.total).toBe(20_000)
      expect(diff.entries.length).toBe(10_000)
    }), 60_000)
})
