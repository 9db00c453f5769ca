import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { cpioArchive } from "../../src/kernel/cpio.js"

describe("cpioArchive", () => {
  it("writes newc archives that cpio lists and extracts", () => {
    const archive = cpioArchive([
      { type: "dir", path: "lib", mode: 0o755 },
      { type: "file", path: "lib/hello.txt", mode: 0o644, data: new TextEncoder().encode("hello\n") },
      { type: "file", path: "init", mode: 0o755, data: new Uint8Array([1, 2, 3]) },
      { type: "char", path: "console", mode: 0o600, major: 5, minor: 1 }
    ])
    const listing = execFileSync("cpio", ["-t", "--quiet"], { input: archive, encoding: "utf8" })
    expect(listing.trim().split("\n")).toEqual(["lib", "lib/hello.txt", "init", "console"])
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-cpio-"))
    execFileSync("cpio", ["-i", "--quiet", "--nonmatching", "console"], { input: archive, cwd: dir })
    expect(Fs.readFileSync(Path.join(dir, "lib/hello.txt"), "utf8")).toBe("hello\n")
    expect(Fs.statSync(Path.join(dir, "init")).mode & 0o777).toBe(0o755)
    Fs.rmSync(dir, { recursive: true })
  })

  it("is deterministic", () => {
    const entries = [{ type: "file" as const, path: "a", mode: 0o644, data: new Uint8Array([9]) }]
    expect(Buffer.compare(cpioArchive(entries), cpioArchive(entries))).toBe(0)
  })
})
