/** Unified diffs for workspace_patch_apply: confined paths, exact hunks, nothing half-applied. */
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { applyFilePatch, parseWorkspacePatch, workspacePathOf } from "../../src/workspace/patch.js"

const modify = "--- a/note.txt\n+++ b/note.txt\n@@ -1 +1 @@\n-hello from sync\n+hello from patch\n"

const parse = (text: string) => Either.getOrThrow(parseWorkspacePatch(text))

describe("workspace patches", () => {
  it("applies the contract's example, and refuses it on a file that differs", () => {
    const [file] = parse(modify)
    expect(file).toMatchObject({ path: "/workspace/note.txt", change: "modified" })
    expect(applyFilePatch(file!, "hello from sync\n")).toEqual(Either.right("hello from patch\n"))
    expect(Either.isLeft(applyFilePatch(file!, "hello from elsewhere\n"))).toBe(true)
    expect(Either.isLeft(applyFilePatch(file!, undefined))).toBe(true)
  })

  it("adds and deletes files, git style", () => {
    const files = parse(
      "diff --git a/new.txt b/new.txt\nnew file mode 100644\n--- /dev/null\n+++ b/src/new.txt\n@@ -0,0 +1,2 @@\n+one\n+two\n" +
        "--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n"
    )
    expect(files.map((f) => [f.path, f.change])).toEqual([["/workspace/src/new.txt", "added"], ["/workspace/old.txt", "deleted"]])
    expect(applyFilePatch(files[0]!, undefined)).toEqual(Either.right("one\ntwo\n"))
    expect(Either.isLeft(applyFilePatch(files[0]!, "already here\n"))).toBe(true)
    expect(applyFilePatch(files[1]!, "bye\n")).toEqual(Either.right(null))
    expect(Either.isLeft(applyFilePatch(files[1]!, "bye\nand more\n"))).toBe(true)
  })

  it("allows no fuzz: a hunk one line off does not apply", () => {
    const [file] = parse("--- a/f\n+++ b/f\n@@ -2,3 +2,3 @@\n b\n-c\n+C\n d\n")
    expect(applyFilePatch(file!, "a\nb\nc\nd\n")).toEqual(Either.right("a\nb\nC\nd\n"))
    expect(Either.isLeft(applyFilePatch(file!, "b\nc\nd\ne\n"))).toBe(true)
  })

  it("keeps every path under /workspace", () => {
    expect(workspacePathOf("a/src/x.ts")).toEqual(Either.right("/workspace/src/x.ts"))
    expect(workspacePathOf("/workspace/x")).toEqual(Either.right("/workspace/x"))
    for (const bad of ["a/../etc/passwd", "/etc/passwd", "b/x/../../y", "/workspace", "/workspacex/y"]) {
      expect([bad, Either.isLeft(workspacePathOf(bad))]).toEqual([bad, true])
    }
    expect(Either.isLeft(parseWorkspacePatch("--- a/../../etc/shadow\n+++ b/../../etc/shadow\n@@ -1 +1 @@\n-x\n+y\n"))).toBe(true)
  })

  it("refuses what it cannot do exactly: garbage, renames, a file changed twice, an empty patch", () => {
    expect(Either.isLeft(parseWorkspacePatch(""))).toBe(true)
    expect(Either.isLeft(parseWorkspacePatch("--- a/x\n+++ b/y\n@@ -1 +1 @@\n-x\n+y\n"))).toBe(true)
    expect(Either.isLeft(parseWorkspacePatch(modify + modify))).toBe(true)
    expect(Either.isLeft(parseWorkspacePatch("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-x\n+y\n"))).toBe(true)
  })
})
