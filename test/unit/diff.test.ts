/** workspace_diff's comparison (src/workspace/diff.ts) over two tar streams, as the guest sends them. */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { UNBOUNDED } from "../../src/archive/policy.js"
import { tarEnd, tarEntry, type TarWriterEntry } from "../../src/archive/write.js"
import { diffTrees } from "../../src/workspace/diff.js"

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
      expect(diff).toEqual({ entries: [], patch: "" })
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
        file("workspace/new/file.txt", "hello\n")
      )
      const diff = yield* diffTrees(baseline, current, UNBOUNDED)
      expect(diff.entries).toEqual([
        { path: "/workspace/edit.txt", change: "modified", artifact_type: "file", binary: false },
        { path: "/workspace/gone.txt", change: "deleted", artifact_type: "file", binary: false },
        { path: "/workspace/img.bin", change: "modified", artifact_type: "file", binary: true },
        { path: "/workspace/new/file.txt", change: "added", artifact_type: "file", binary: false },
        { path: "/workspace/thing", change: "type_changed", artifact_type: "directory", binary: false },
        { path: "/workspace/thing/inside", change: "added", artifact_type: "file", binary: false }
      ])
      expect(diff.patch).toContain("--- a/workspace/edit.txt")
      expect(diff.patch).toContain("+++ b/workspace/edit.txt")
      expect(diff.patch).toContain("-two\n+TWO\n")
      expect(diff.patch).toContain("+++ /dev/null")
      expect(diff.patch).toContain("--- /dev/null\n+++ b/workspace/new/file.txt")
      expect(diff.patch).toContain("--- a/workspace/thing\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-was a file\n")
      expect(diff.patch).not.toContain("img.bin")
      expect(diff.patch).not.toContain("====")
    }))
})
