/**
 * The agent's import extractor (guest/agent/untar.c), compiled natively with
 * sanitizers and fed the host's own import streams: it unpacks what GNU tar
 * unpacks, and never writes through a link already on an entry's way.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { tarEnd, tarEntry, type TarWriterEntry } from "../../src/archive/write.js"
import { guestNativeTool } from "../support/guestNative.js"

const native = guestNativeTool("untar", ["test/untar_main.c", "agent/untar.c"])

const entry = (path: string, type: TarWriterEntry["type"], extra: Partial<TarWriterEntry> = {}) =>
  ({ path, type, mode: type === "directory" ? 0o755 : 0o644, size: 0, mtime: 1_700_000_000, linkname: "", ...extra }) as TarWriterEntry

const file = (path: string, text: string, mode = 0o644) => {
  const bytes = new TextEncoder().encode(text)
  return tarEntry(entry(path, "file", { size: bytes.byteLength, mode }), bytes)
}

const stream = (...parts: Array<Uint8Array>) => Buffer.concat([...parts, tarEnd()])

const run = (dest: string, input: Buffer) => spawnSync(native.tool, ["untar", dest], { input, encoding: "utf8" })

const fresh = (name: string) => {
  const d = Path.join(native.dir, name)
  Fs.mkdirSync(d, { recursive: true })
  return d
}

/** Every path under `root` with its kind, mode, size or target, and content. */
const snapshot = (root: string) => {
  const out: Record<string, string> = {}
  const walk = (rel: string) => {
    for (const name of Fs.readdirSync(Path.join(root, rel)).sort()) {
      const r = Path.join(rel, name)
      const st = Fs.lstatSync(Path.join(root, r))
      if (st.isSymbolicLink()) out[r] = `link ${Fs.readlinkSync(Path.join(root, r))}`
      else if (st.isDirectory()) {
        out[r] = `dir ${(st.mode & 0o7777).toString(8)}`
        walk(r)
      } else out[r] = `file ${(st.mode & 0o7777).toString(8)} ${st.mtimeMs / 1000} ${Fs.readFileSync(Path.join(root, r), "utf8")}`
    }
  }
  walk("")
  return out
}

describe("guest untar.c", () => {
  const longName = `deep/${"d".repeat(120)}/${"n".repeat(140)}.txt`
  const archive = stream(
    tarEntry(entry("src", "directory")),
    file("src/main.c", "int main(void) { return 0; }\n"),
    file("src/run.sh", "#!/bin/sh\necho hi\n", 0o755),
    tarEntry(entry("src/link", "symlink", { linkname: "main.c" })),
    tarEntry(entry("src/hard", "hardlink", { linkname: "src/main.c" })),
    file(longName, "long\n"),
    file("empty", "")
  )

  it("unpacks what GNU tar unpacks, and makes the destination's missing directories", () => {
    const ours = Path.join(fresh("same-ours"), "a/b")
    const r = run(ours, archive)
    expect(r.stderr).toBe("")
    expect(r.status).toBe(0)
    const gnu = fresh("same-gnu")
    execFileSync("tar", ["-x", "-f", "-", "-C", gnu], { input: archive })
    expect(snapshot(ours)).toEqual(snapshot(gnu))
    expect(Fs.statSync(Path.join(ours, "src/hard")).ino).toBe(Fs.statSync(Path.join(ours, "src/main.c")).ino)
  })

  it("refuses to write through a symlink already on an entry's way, naming the entry", () => {
    const dest = fresh("through-dest")
    const target = fresh("through-target")
    Fs.symlinkSync(target, Path.join(dest, "linkdir"))
    const r = run(dest, stream(file("linkdir/f", "escaped\n")))
    expect(r.status).toBe(1)
    expect(r.stderr).toBe(`pyro-untar: linkdir/f: "linkdir" on its way is a symbolic link; refusing to write through it\n`)
    expect(Fs.readdirSync(target)).toEqual([])
  })

  it("refuses a destination that passes through a symlink", () => {
    const base = fresh("dest-link")
    const target = fresh("dest-link-target")
    Fs.symlinkSync(target, Path.join(base, "workspace"))
    const r = run(Path.join(base, "workspace", "sub"), stream(file("f", "x")))
    expect(r.status).toBe(1)
    expect(r.stderr).toContain("\"workspace\" on its way is a symbolic link")
    expect(Fs.readdirSync(target)).toEqual([])
  })

  it("replaces a file or link at the entry itself instead of writing through it", () => {
    const dest = fresh("leaf-dest")
    const victim = Path.join(fresh("leaf-outside"), "victim")
    Fs.writeFileSync(victim, "untouched\n")
    Fs.symlinkSync(victim, Path.join(dest, "file.txt"))
    Fs.writeFileSync(Path.join(dest, "old.txt"), "old\n")
    const r = run(dest, stream(file("file.txt", "new\n"), file("old.txt", "replaced\n")))
    expect(r.status).toBe(0)
    expect(Fs.lstatSync(Path.join(dest, "file.txt")).isFile()).toBe(true)
    expect(Fs.readFileSync(Path.join(dest, "file.txt"), "utf8")).toBe("new\n")
    expect(Fs.readFileSync(Path.join(dest, "old.txt"), "utf8")).toBe("replaced\n")
    expect(Fs.readFileSync(victim, "utf8")).toBe("untouched\n")
  })

  it("fails clearly on a stream cut short", () => {
    const inFile = run(fresh("cut-file"), archive.subarray(0, 1100))
    expect(inFile.status).toBe(1)
    expect(inFile.stderr).toBe("pyro-untar: src/main.c: the stream ended early\n")
    const inHeader = run(fresh("cut-header"), archive.subarray(0, 1000))
    expect(inHeader.stderr).toBe("pyro-untar: the stream ended early\n")
  })
})
