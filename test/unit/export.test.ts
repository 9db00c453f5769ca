/**
 * Writing a guest's export onto the host (src/workspace/export.ts): the
 * guest's tar is hostile input. Links out, devices, FIFOs, control bytes in
 * names, entries outside the exported path, too many or too large or too deep
 * entries: each is refused naming the entry, and nothing is left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { tarEnd, tarEntry, type TarWriterEntry } from "../../src/archive/write.js"
import { type ExportTarget, writeExport } from "../../src/workspace/export.js"

let dir: string
beforeAll(() => void (dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-export-"))))
afterAll(() => Fs.rmSync(dir, { recursive: true, force: true }))

const entry = (path: string, type: TarWriterEntry["type"], extra: Partial<TarWriterEntry> = {}) =>
  ({ path, type, mode: type === "directory" ? 0o755 : 0o644, size: 0, mtime: 1_700_000_000, linkname: "", ...extra }) as TarWriterEntry
const file = (path: string, text: string, mode = 0o644) => {
  const bytes = new TextEncoder().encode(text)
  return tarEntry(entry(path, "file", { size: bytes.byteLength, mode }), bytes)
}
/** An entry of a type the writer does not make (devices, FIFOs): a file header with its type flag and checksum redone. */
const typed = (path: string, flag: string) => {
  const block = Buffer.from(tarEntry(entry(path, "file")).subarray(0, 512))
  block[156] = flag.charCodeAt(0)
  block.fill(0x20, 148, 156)
  const sum = block.reduce((a, b) => a + b, 0)
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1")
  return block
}
const tar = (...parts: Array<Uint8Array>) => Stream.make(Buffer.concat([...parts, tarEnd()]))

let n = 0
const target = (extra: Partial<ExportTarget> = {}): ExportTarget => ({
  workspaceId: "0123456789ab",
  path: "/workspace/src",
  outputPath: Path.join(dir, `out-${++n}`),
  format: "tree",
  overwrite: false,
  ...extra
})

const leftovers = () => Fs.readdirSync(dir).filter((name) => name.startsWith(".pyro-export-"))

describe("export onto the host", () => {
  it.effect("writes a tree: files, modes without setuid, links inside, empty directories", () =>
    Effect.gen(function*() {
      const t = target()
      const outcome = yield* writeExport(
        tar(
          tarEntry(entry("src/", "directory")),
          file("src/a.txt", "alpha\n"),
          file("src/bin/tool", "#!/bin/sh\n", 0o4755),
          tarEntry(entry("src/link", "symlink", { linkname: "a.txt" })),
          tarEntry(entry("src/empty/", "directory", { mode: 0o700 }))
        ),
        t
      )
      expect(outcome).toMatchObject({ artifactType: "directory", entryCount: 5, bytesWritten: 16, neutralised: ["/workspace/src/bin/tool"] })
      expect(Fs.readFileSync(Path.join(t.outputPath, "a.txt"), "utf8")).toBe("alpha\n")
      expect(Fs.statSync(Path.join(t.outputPath, "bin/tool")).mode & 0o7777).toBe(0o755)
      expect(Fs.readlinkSync(Path.join(t.outputPath, "link"))).toBe("a.txt")
      expect(Fs.statSync(Path.join(t.outputPath, "empty")).mode & 0o777).toBe(0o700)
      expect(leftovers()).toEqual([])
    }))

  it.effect("exports one file as that file, and as a tar archive", () =>
    Effect.gen(function*() {
      const t = target({ path: "/workspace/note.txt" })
      expect(yield* writeExport(tar(file("note.txt", "hi\n")), t)).toMatchObject({ artifactType: "file", entryCount: 1 })
      expect(Fs.readFileSync(t.outputPath, "utf8")).toBe("hi\n")
      const a = target({ format: "tar" })
      const outcome = yield* writeExport(tar(tarEntry(entry("src/", "directory")), file("src/x", "x")), a)
      expect(outcome.bytesWritten).toBe(Fs.statSync(a.outputPath).size)
      expect(Fs.readFileSync(a.outputPath).subarray(0, 4).toString()).toBe("src/")
    }))

  it.effect("never overwrites unless told to, and then replaces in one step", () =>
    Effect.gen(function*() {
      const t = target()
      Fs.writeFileSync(t.outputPath, "mine")
      const refused = yield* Effect.exit(writeExport(tar(file("src", "new")), t))
      expect(String(Exit.isFailure(refused) ? refused.cause : "")).toContain("exists; pass overwrite")
      expect(Fs.readFileSync(t.outputPath, "utf8")).toBe("mine")
      yield* writeExport(tar(tarEntry(entry("src/", "directory")), file("src/f", "new")), { ...t, overwrite: true })
      expect(Fs.readFileSync(Path.join(t.outputPath, "f"), "utf8")).toBe("new")
      expect(leftovers()).toEqual([])
    }))

  const hostile: Array<[string, Array<Uint8Array>, string, string]> = [
    ["a link out", [tarEntry(entry("src/", "directory")), tarEntry(entry("src/etc", "symlink", { linkname: "/etc" }))], "src/etc", "absolute"],
    ["a write through a link", [
      tarEntry(entry("src/", "directory")),
      tarEntry(entry("src/d", "symlink", { linkname: "." })),
      file("src/d/x", "x")
    ], "src/d/x", "symlink"],
    ["a dotdot name", [tarEntry(entry("src/", "directory")), file("src/../../evil", "x")], "src/../../evil", ".."],
    ["a device", [tarEntry(entry("src/", "directory")), typed("src/sda", "4")], "src/sda", "block device"],
    ["a FIFO", [tarEntry(entry("src/", "directory")), typed("src/pipe", "6")], "src/pipe", "FIFO"],
    ["a control byte in a name", [tarEntry(entry("src/", "directory")), file("src/\u001b[31mred", "x")], "src/\u001b[31mred", "control character"],
    ["a link one level above the export", [tarEntry(entry("src/", "directory")), tarEntry(entry("src/peek", "symlink", { linkname: "../secret.txt" }))], "src/peek", "outside"],
    ["a link to the export's own parent through another link", [
      tarEntry(entry("src/", "directory")),
      tarEntry(entry("src/self", "symlink", { linkname: "." })),
      tarEntry(entry("src/up", "symlink", { linkname: "self/.." }))
    ], "src/up", "outside"],
    ["an entry beside the exported path", [tarEntry(entry("src/", "directory")), file("other/x", "x")], "other/x", "not inside"]
  ]
  for (const [name, parts, entryName, reason] of hostile) {
    it.effect(`refuses ${name}, naming the entry, and leaves nothing`, () =>
      Effect.gen(function*() {
        const t = target()
        const exit = yield* Effect.exit(writeExport(tar(...parts), t))
        expect(Exit.isFailure(exit)).toBe(true)
        const error = Exit.isFailure(exit)
          ? Option.getOrUndefined(Cause.failureOption(exit.cause)) as { entry?: string; message: string } | undefined
          : undefined
        expect(error?.entry).toBe(`/workspace/${entryName}`)
        expect(error?.message).toContain(reason)
        expect(Fs.existsSync(t.outputPath)).toBe(false)
        expect(leftovers()).toEqual([])
      }))
  }

  it.effect("bounds what the guest may send: entries, bytes and depth", () =>
    Effect.gen(function*() {
      const limits = { maxEntries: 3, maxBytes: 10, maxDepth: 4 }
      const many = [tarEntry(entry("src/", "directory")), ...[1, 2, 3, 4].map((i) => file(`src/${i}`, "x"))]
      const big = [tarEntry(entry("src/", "directory")), file("src/big", "x".repeat(11))]
      const deep = [tarEntry(entry("src/", "directory")), file("src/a/b/c/d/e", "x")]
      for (const parts of [many, big, deep]) {
        const t = target({ limits })
        const exit = yield* Effect.exit(writeExport(tar(...parts), t))
        expect(Exit.isFailure(exit)).toBe(true)
        expect(Fs.existsSync(t.outputPath)).toBe(false)
      }
      expect(leftovers()).toEqual([])
    }))
})
