/**
 * Reading a disk image offline (src/workspace/disk/): a real ext4 made by
 * mkfs.ext4 -d from a tree shaped like a workspace's writable layer, read by
 * the real debugfs. Names with newlines, escapes and slashes-lookalikes are
 * listed as they are; debugfs's answers are parsed strictly (a cut answer
 * gives what was whole, a malformed one nothing).
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Cursor, parseInodeDump, parseListing } from "../../src/workspace/disk/answer.js"
import { settledSuperblock } from "../../src/workspace/disk/image.js"
import { type DiskTarget, listTree, readDiskFile, resolvePath } from "../../src/workspace/disk/tree.js"
import { scopedTempDir } from "../support/tempDir.js"

const bytes = (text: string) => new Uint8Array(Buffer.from(text, "latin1"))

const makeDisk = (dir: string) => {
  const upper = Path.join(dir, "tree", "upper")
  Fs.mkdirSync(Path.join(upper, "workspace", "sub", "deep"), { recursive: true })
  Fs.mkdirSync(Path.join(dir, "tree", "work"))
  Fs.writeFileSync(Path.join(upper, "workspace", "a.txt"), "hello\n")
  Fs.writeFileSync(Path.join(upper, "workspace", "bad\nname"), "x")
  Fs.writeFileSync(Path.join(upper, "workspace", "esc\x1b[31m"), "y")
  // A name holding what debugfs prints between answers.
  Fs.writeFileSync(Path.join(upper, "workspace", "fake\n\ndebugfs: ls -p <2>\n"), "z")
  Fs.writeFileSync(Path.join(upper, "workspace", "sub", "deep", "big.bin"), Buffer.alloc(200_000, 7))
  Fs.symlinkSync("/etc/passwd", Path.join(upper, "workspace", "short-link"))
  Fs.symlinkSync("t".repeat(300), Path.join(upper, "workspace", "long-link"))
  const image = Path.join(dir, "disk.ext4")
  execFileSync("mkfs.ext4", ["-q", "-F", "-d", Path.join(dir, "tree"), image, "64M"])
  return image
}

const targetFor = (image: string, inodeSize: number, path: string): DiskTarget => ({
  workspaceId: "000000000000",
  operation: "disk_list",
  path,
  image,
  inodeSize
})

describe("a disk image read offline", () => {
  it.scoped("lists, resolves and reads by inode, hostile names included", () =>
    Effect.gen(function*() {
      const image = makeDisk(yield* scopedTempDir("pyro-disk-"))
      const { inodeSize } = yield* settledSuperblock(image)
      const target = targetFor(image, inodeSize, "/workspace")
      const self = yield* resolvePath(target, "/workspace")
      expect(self.facts.type).toBe("directory")
      const listing = yield* listTree(target, self.ino, "/workspace", true, 100)
      expect(listing.truncated).toBe(false)
      const byPath = new Map(listing.entries.map((e) => [e.path, e]))
      expect([...byPath.keys()].sort()).toEqual([
        "/workspace/a.txt",
        "/workspace/bad\nname",
        "/workspace/esc\x1b[31m",
        "/workspace/fake\n\ndebugfs: ls -p <2>\n",
        "/workspace/long-link",
        "/workspace/short-link",
        "/workspace/sub",
        "/workspace/sub/deep",
        "/workspace/sub/deep/big.bin"
      ])
      expect(byPath.get("/workspace/a.txt")?.facts).toMatchObject({ type: "file", size: 6, permissions: 0o644 })
      expect(byPath.get("/workspace/bad\nname")?.facts.type).toBe("file")
      expect(byPath.get("/workspace/esc\x1b[31m")?.facts.type).toBe("file")
      expect(byPath.get("/workspace/short-link")?.linkTarget).toBe("/etc/passwd")
      expect(byPath.get("/workspace/long-link")?.linkTarget).toBe("t".repeat(300))
      expect(byPath.get("/workspace/sub/deep/big.bin")?.facts.size).toBe(200_000)

      const file = yield* resolvePath(target, "/workspace/sub/deep/big.bin")
      const head = yield* readDiskFile(target, file.ino, file.facts.size, 1000)
      expect(Buffer.from(head)).toEqual(Buffer.alloc(1000, 7))
      const hello = yield* resolvePath(target, "/workspace/a.txt")
      expect(Buffer.from(yield* readDiskFile(target, hello.ino, hello.facts.size, 65536)).toString()).toBe("hello\n")

      const missing = yield* Effect.either(resolvePath(target, "/etc/passwd"))
      expect(Either.isLeft(missing) && missing.left.problem).toBe("not_found")
      const throughFile = yield* Effect.either(resolvePath(target, "/workspace/a.txt/x"))
      expect(Either.isLeft(throughFile) && throughFile.left.problem).toBe("wrong_type")

      const cut = yield* listTree(target, self.ino, "/workspace", true, 3)
      expect(cut).toMatchObject({ truncated: true })
      expect(cut.entries).toHaveLength(3)
    }).pipe(Effect.provide(NodeContext.layer)))

  it("reads a record field by field: a name's newlines do not end it", () => {
    // What follows such a name must still be a record's fields, or the answer is malformed.
    expect(parseListing(new Cursor(bytes("/12/100644/0/0/a\n\ndebugfs: ls -p <2>\n/13/1/0/0/b/1/\n")))).toBeUndefined()
    const whole = parseListing(new Cursor(bytes("/12/100644/0/0/a\nb\x1b/5/\n/13/040755/0/0/dir//\n\n")))
    expect(whole?.complete).toBe(true)
    expect(whole?.entries.map((e) => Buffer.from(e.name).toString("latin1"))).toEqual(["a\nb\x1b", "dir"])
  })

  it("gives what was whole from a cut answer, and nothing from a malformed one", () => {
    const text = "/12/100644/0/0/a/5/\n/13/100644/0/0/b/"
    expect(parseListing(new Cursor(bytes(text)), true)).toMatchObject({ complete: false, entries: [{ ino: 12 }] })
    expect(parseListing(new Cursor(bytes(text)))).toBeUndefined()
    expect(parseListing(new Cursor(bytes("/x/100644/0/0/a/5/\n\n")))).toBeUndefined()
    expect(parseListing(new Cursor(bytes("/0/100644/0/0/a/5/\n\n")))).toBeUndefined()
    expect(parseListing(new Cursor(bytes("/1/100644/0/0/a/5/junk\n\n")))).toBeUndefined()
    expect(parseListing(new Cursor(bytes(`/1/100644/0/0/${"n".repeat(256)}/5/\n\n`)))).toBeUndefined()
  })

  it("reads an inode dump with repeated lines, and refuses one out of order", () => {
    const line = (offset: number, byte: string) => `${offset.toString(8).padStart(4, "0")}  ${`${byte}${byte} `.repeat(8)} ................`
    const dump = [line(0, "a1"), "*", line(0o200, "00"), "*", ""].join("\n") + "\n"
    const inode = parseInodeDump(new Cursor(bytes(dump)), 256)
    expect(inode?.subarray(0, 0o200).every((b) => b === 0xa1)).toBe(true)
    expect(inode?.subarray(0o200).every((b) => b === 0)).toBe(true)
    expect(parseInodeDump(new Cursor(bytes([line(0o20, "00"), ""].join("\n") + "\n")), 256)).toBeUndefined()
    expect(parseInodeDump(new Cursor(bytes([line(0, "00"), ""].join("\n") + "\n")), 256)).toBeUndefined()
  })
})
