/**
 * The agent's file tool (guest/agent/fs.c), compiled natively with sanitizers
 * and run against a temporary root in place of /workspace: list, read, write
 * and tar stay beneath the root whatever links the tree holds, and the tar
 * stream reads back with GNU tar and with the host's own reader.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { execFileSync, spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { readTar, type TarEntry } from "../../src/archive/read.js"
import { guestNativeTool } from "../support/guestNative.js"

const native = guestNativeTool("fs", ["test/fs_main.c", "agent/fs.c"])

/** A fresh root (standing in for /workspace) named `name`, next to an `outside` directory holding a secret. */
const fresh = (name: string) => {
  const base = Fs.mkdtempSync(Path.join(native.dir, "case-"))
  const root = Path.join(base, name)
  Fs.mkdirSync(root)
  Fs.mkdirSync(Path.join(base, "outside"))
  Fs.writeFileSync(Path.join(base, "outside", "secret"), "secret\n")
  return { root, outside: Path.join(base, "outside") }
}

const run = (root: string, args: ReadonlyArray<string>, input?: string | Buffer) => {
  const r = spawnSync(native.tool, ["fs", "--root", root, ...args], { input: input ?? "" })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() }
}

interface Entry {
  readonly path: string
  readonly type: string
  readonly size: number
  readonly mode: string
  readonly mtime: number
  readonly target: string
}

/** The list format, parsed strictly: entry records (7 fields), then one end record (3 fields). */
const parseList = (out: Buffer) => {
  const fields = out.toString("utf8").split("\0")
  expect(fields.pop()).toBe("")
  const entries: Array<Entry> = []
  while (fields[0] === "entry") {
    const [, path, type, size, mode, mtime, target] = fields.splice(0, 7)
    entries.push({ path: path!, type: type!, size: Number(size), mode: mode!, mtime: Number(mtime), target: target! })
  }
  expect(fields.length).toBe(3)
  expect(fields[0]).toBe("end")
  return { self: entries[0]!, entries: entries.slice(1), status: fields[1]!, count: Number(fields[2]) }
}

/** `read` output: SIZE, NUL, then the content. */
const parseRead = (out: Buffer) => {
  const nul = out.indexOf(0)
  return { size: Number(out.subarray(0, nul).toString()), content: out.subarray(nul + 1).toString() }
}

describe("guest fs.c", () => {
  describe("list", () => {
    const tree = () => {
      const t = fresh("workspace")
      Fs.mkdirSync(Path.join(t.root, "src/deep"), { recursive: true })
      Fs.writeFileSync(Path.join(t.root, "src/a.txt"), "hello\n")
      Fs.chmodSync(Path.join(t.root, "src/a.txt"), 0o640)
      Fs.utimesSync(Path.join(t.root, "src/a.txt"), 1_700_000_000, 1_700_000_000)
      Fs.writeFileSync(Path.join(t.root, "src/deep/b.txt"), "b")
      Fs.symlinkSync("deep", Path.join(t.root, "src/inlink"))
      Fs.symlinkSync(t.outside, Path.join(t.root, "src/outlink"))
      Fs.writeFileSync(Path.join(t.root, "src/name\nwith newline"), "")
      return t
    }

    it("lists a directory's entries with type, size, mode, mtime and link targets, without following links", () => {
      const { root, outside } = tree()
      const r = run(root, ["list", `${root}/src`])
      expect(r.stderr).toBe("")
      expect(r.status).toBe(0)
      const l = parseList(r.stdout)
      expect(l.self).toMatchObject({ path: `${root}/src`, type: "directory", mode: "755" })
      const byPath = Object.fromEntries(l.entries.map((e) => [e.path.slice(root.length), e]))
      expect(Object.keys(byPath).sort()).toEqual(["/src/a.txt", "/src/deep", "/src/inlink", "/src/name\nwith newline", "/src/outlink"])
      expect(byPath["/src/a.txt"]).toEqual({ path: `${root}/src/a.txt`, type: "file", size: 6, mode: "640", mtime: 1_700_000_000, target: "" })
      expect(byPath["/src/inlink"]).toMatchObject({ type: "symlink", size: 4, target: "deep" })
      expect(byPath["/src/outlink"]).toMatchObject({ type: "symlink", target: outside })
      expect(l).toMatchObject({ status: "complete", count: 5 })
    })

    it("recurses depth first, never into a linked directory", () => {
      const { root } = tree()
      const l = parseList(run(root, ["list", root, "--recursive"]).stdout)
      expect(l.self).toMatchObject({ path: root, type: "directory" })
      const paths = l.entries.map((e) => e.path.slice(root.length + 1))
      expect([...paths].sort()).toEqual(
        ["src", "src/a.txt", "src/deep", "src/deep/b.txt", "src/inlink", "src/name\nwith newline", "src/outlink"]
      )
      expect(paths.indexOf("src/deep")).toBeLessThan(paths.indexOf("src/deep/b.txt"))
      expect(l).toMatchObject({ status: "complete", count: 7 })
    })

    it("stops after --max-entries and says so; exactly that many is complete", () => {
      const { root } = tree()
      const cut = parseList(run(root, ["list", root, "--recursive", "--max-entries", "3"]).stdout)
      expect(cut.entries.length).toBe(3)
      expect(cut).toMatchObject({ status: "truncated", count: 3 })
      const exact = parseList(run(root, ["list", root, "--recursive", "--max-entries", "7"]).stdout)
      expect(exact).toMatchObject({ status: "complete", count: 7 })
    })

    it("reports a link or a file given as PATH as itself, and refuses a way out", () => {
      const { root } = tree()
      const link = parseList(run(root, ["list", `${root}/src/outlink`]).stdout)
      expect(link.self.type).toBe("symlink")
      expect(link.entries).toEqual([])
      expect(parseList(run(root, ["list", `${root}/src/inlink/b.txt`]).stdout).self).toMatchObject({ type: "file", size: 1 })
      const out = run(root, ["list", `${root}/src/outlink/secret`])
      expect(out.status).toBe(4)
      expect(out.stderr).toBe(`fs: list: ${root}/src/outlink/secret: outside ${root}\n`)
      const missing = run(root, ["list", `${root}/nope`])
      expect(missing.status).toBe(3)
      expect(missing.stderr).toBe(`fs: list: ${root}/nope: no such file or directory\n`)
    })
  })

  describe("read", () => {
    it("gives the total size, then at most MAX_BYTES of content", () => {
      const { root } = fresh("workspace")
      Fs.writeFileSync(Path.join(root, "f.txt"), "0123456789")
      expect(parseRead(run(root, ["read", `${root}/f.txt`, "4"]).stdout)).toEqual({ size: 10, content: "0123" })
      expect(parseRead(run(root, ["read", `${root}/f.txt`, "100"]).stdout)).toEqual({ size: 10, content: "0123456789" })
      Fs.writeFileSync(Path.join(root, "big"), Buffer.alloc(300_000, 7))
      const big = run(root, ["read", `${root}/big`, "200000"]).stdout
      expect(big.byteLength).toBe("300000\0".length + 200_000)
    })

    it("follows a link that stays inside, and refuses one that leaves, or a '..'", () => {
      const { outside, root } = fresh("workspace")
      Fs.mkdirSync(Path.join(root, "d"))
      Fs.writeFileSync(Path.join(root, "d/f.txt"), "inside\n")
      Fs.symlinkSync("../d/f.txt", Path.join(root, "d/rel"))
      Fs.symlinkSync("d", Path.join(root, "dirlink"))
      Fs.symlinkSync(Path.join(outside, "secret"), Path.join(root, "abs"))
      Fs.symlinkSync("../outside/secret", Path.join(root, "up"))
      Fs.symlinkSync(Path.join(root, "d/f.txt"), Path.join(root, "absinside"))
      expect(parseRead(run(root, ["read", `${root}/d/rel`, "100"]).stdout).content).toBe("inside\n")
      expect(parseRead(run(root, ["read", `${root}/dirlink/f.txt`, "100"]).stdout).content).toBe("inside\n")
      for (const name of ["abs", "up", "absinside"]) {
        const r = run(root, ["read", `${root}/${name}`, "100"])
        expect(r.status).toBe(4)
        expect(r.stderr).toBe(`fs: read: ${root}/${name}: outside ${root}\n`)
        expect(r.stdout.byteLength).toBe(0)
      }
      const dots = run(root, ["read", `${root}/d/../../outside/secret`, "100"])
      expect(dots.status).toBe(2)
      expect(dots.stderr).toContain("not a normalised path")
      const elsewhere = run(root, ["read", `${outside}/secret`, "100"])
      expect(elsewhere.status).toBe(4)
      const prefix = run(root, ["read", `${root}x/secret`, "100"])
      expect(prefix.status).toBe(4)
    })

    it("refuses a directory or a FIFO (without blocking on it)", () => {
      const { root } = fresh("workspace")
      execFileSync("mkfifo", [Path.join(root, "pipe")])
      for (const path of [root, `${root}/pipe`]) {
        const r = run(root, ["read", path, "10"])
        expect(r.status).toBe(5)
        expect(r.stderr).toBe(`fs: read: ${path}: not a regular file\n`)
      }
    })
  })

  describe("write", () => {
    it("makes missing parents and writes stdin, printing the bytes written", () => {
      const { root } = fresh("workspace")
      const r = run(root, ["write", `${root}/a/b/c.txt`], "new content\n")
      expect(r.stderr).toBe("")
      expect(r.stdout.toString()).toBe("12\0")
      expect(Fs.readFileSync(Path.join(root, "a/b/c.txt"), "utf8")).toBe("new content\n")
      expect((Fs.statSync(Path.join(root, "a/b/c.txt")).mode & 0o777).toString(8)).toBe("644")
      expect(Fs.readdirSync(Path.join(root, "a/b"))).toEqual(["c.txt"])
    })

    it("replaces the file by rename: an open reader keeps the old content; the mode stays", () => {
      const { root } = fresh("workspace")
      const target = Path.join(root, "f.txt")
      Fs.writeFileSync(target, "old\n")
      Fs.chmodSync(target, 0o750)
      const before = Fs.statSync(target).ino
      const reader = Fs.openSync(target, "r")
      try {
        expect(run(root, ["write", target], "brand new\n").status).toBe(0)
        expect(Fs.readFileSync(reader, "utf8")).toBe("old\n")
      } finally {
        Fs.closeSync(reader)
      }
      expect(Fs.readFileSync(target, "utf8")).toBe("brand new\n")
      expect(Fs.statSync(target).ino).not.toBe(before)
      expect((Fs.statSync(target).mode & 0o777).toString(8)).toBe("750")
      expect(Fs.readdirSync(root)).toEqual(["f.txt"])
    })

    it("replaces a link at PATH instead of writing through it", () => {
      const { outside, root } = fresh("workspace")
      Fs.symlinkSync(Path.join(outside, "secret"), Path.join(root, "link"))
      const r = run(root, ["write", `${root}/link`], "mine\n")
      expect(r.status).toBe(0)
      expect(Fs.lstatSync(Path.join(root, "link")).isFile()).toBe(true)
      expect(Fs.readFileSync(Path.join(root, "link"), "utf8")).toBe("mine\n")
      expect(Fs.readFileSync(Path.join(outside, "secret"), "utf8")).toBe("secret\n")
    })

    it("refuses a parent that is a link out, and follows one that stays inside", () => {
      const { outside, root } = fresh("workspace")
      Fs.symlinkSync(outside, Path.join(root, "out"))
      Fs.mkdirSync(Path.join(root, "real"))
      Fs.symlinkSync("real", Path.join(root, "in"))
      const r = run(root, ["write", `${root}/out/new/f.txt`], "x")
      expect(r.status).toBe(4)
      expect(r.stderr).toBe(`fs: write: ${root}/out/new/f.txt: outside ${root}\n`)
      expect(Fs.readdirSync(outside)).toEqual(["secret"])
      expect(run(root, ["write", `${root}/in/sub/f.txt`], "y").status).toBe(0)
      expect(Fs.readFileSync(Path.join(root, "real/sub/f.txt"), "utf8")).toBe("y")
    })

    it("refuses a directory at PATH, or more than --max-bytes, leaving no temporary file", () => {
      const { root } = fresh("workspace")
      Fs.mkdirSync(Path.join(root, "d"))
      const onDir = run(root, ["write", `${root}/d`], "x")
      expect(onDir.status).toBe(5)
      expect(onDir.stderr).toBe(`fs: write: ${root}/d: is a directory\n`)
      const big = run(root, ["write", `${root}/big`, "--max-bytes", "10"], "01234567890")
      expect(big.status).toBe(6)
      expect(big.stderr).toBe(`fs: write: ${root}/big: more than 10 bytes on stdin\n`)
      expect(run(root, ["write", `${root}/fits`, "--max-bytes", "10"], "0123456789").status).toBe(0)
      expect(Fs.readdirSync(root).sort()).toEqual(["d", "fits"])
    })
  })

  describe("read --no-follow", () => {
    it("refuses a link at PATH itself, and reads a file the same as without it", () => {
      const { root } = fresh("workspace")
      Fs.writeFileSync(Path.join(root, "f"), "text\n")
      Fs.symlinkSync("f", Path.join(root, "l"))
      expect(run(root, ["read", `${root}/l`, "100", "--no-follow"])).toMatchObject({
        status: 5,
        stderr: `fs: read: ${root}/l: is a symbolic link\n`
      })
      expect(parseRead(run(root, ["read", `${root}/f`, "100", "--no-follow"]).stdout)).toEqual({ size: 5, content: "text\n" })
      expect(parseRead(run(root, ["read", `${root}/l`, "100"]).stdout)).toEqual({ size: 5, content: "text\n" })
    })
  })

  describe("delete", () => {
    it("removes a file, or a link itself (never what it names), and refuses a directory or a way out", () => {
      const { outside, root } = fresh("workspace")
      Fs.writeFileSync(Path.join(root, "f"), "x")
      Fs.symlinkSync(Path.join(outside, "secret"), Path.join(root, "link"))
      Fs.mkdirSync(Path.join(root, "d"))
      Fs.symlinkSync(outside, Path.join(root, "out"))
      expect(run(root, ["delete", `${root}/f`])).toMatchObject({ status: 0, stderr: "" })
      expect(run(root, ["delete", `${root}/link`]).status).toBe(0)
      expect(Fs.readFileSync(Path.join(outside, "secret"), "utf8")).toBe("secret\n")
      expect(run(root, ["delete", `${root}/d`])).toMatchObject({ status: 5, stderr: `fs: delete: ${root}/d: is a directory\n` })
      expect(run(root, ["delete", `${root}/out/secret`]).status).toBe(4)
      expect(run(root, ["delete", `${root}/missing`]).status).toBe(3)
      expect(Fs.readdirSync(outside)).toEqual(["secret"])
      expect(Fs.readdirSync(root).sort()).toEqual(["d", "out"])
    })
  })

  describe("tar", () => {
    const longDir = "d".repeat(120)
    const longFile = `${"n".repeat(140)}.txt`
    const longTarget = `${longDir}/${longFile}`
    const tree = () => {
      const t = fresh("workspace")
      const src = Path.join(t.root, "src")
      Fs.mkdirSync(Path.join(src, "empty"), { recursive: true })
      Fs.mkdirSync(Path.join(src, longDir))
      Fs.writeFileSync(Path.join(src, "a.txt"), "hello\n")
      Fs.writeFileSync(Path.join(src, "run.sh"), "#!/bin/sh\n")
      Fs.chmodSync(Path.join(src, "run.sh"), 0o755)
      Fs.writeFileSync(Path.join(src, longDir, longFile), Buffer.alloc(70_000, 1))
      Fs.symlinkSync("a.txt", Path.join(src, "link"))
      Fs.symlinkSync(longTarget, Path.join(src, "longlink"))
      Fs.symlinkSync(t.outside, Path.join(src, "outlink"))
      Fs.linkSync(Path.join(src, "a.txt"), Path.join(src, "hard"))
      execFileSync("mkfifo", [Path.join(src, "pipe")])
      for (const f of ["a.txt", "run.sh"]) Fs.utimesSync(Path.join(src, f), 1_700_000_000, 1_700_000_000)
      return { ...t, src }
    }
    const tarOf = (root: string, path: string) => {
      const r = run(root, ["tar", path])
      expect(r.stderr).toBe("")
      expect(r.status).toBe(0)
      return r.stdout
    }

    it("writes what GNU tar lists and unpacks: names from PATH's parent, links as links, long names, a FIFO as a FIFO", () => {
      const { root, src } = tree()
      const archive = tarOf(root, src)
      const listing = execFileSync("tar", ["-tvf", "-"], { input: archive }).toString().trim().split("\n")
      const kinds = Object.fromEntries(listing.map((line) => {
        const name = line.replace(/^\S+\s+\S+\s+\d+\s+\S+\s+\S+\s+/, "")
        return [name, line[0]]
      }))
      expect(kinds).toEqual({
        "src/": "d",
        "src/empty/": "d",
        [`src/${longDir}/`]: "d",
        [`src/${longDir}/${longFile}`]: "-",
        "src/a.txt": "-",
        "src/run.sh": "-",
        "src/hard": "-",
        "src/link -> a.txt": "l",
        [`src/longlink -> ${longTarget}`]: "l",
        [`src/outlink -> ${Path.dirname(root)}/outside`]: "l",
        "src/pipe": "p"
      })
      const out = Fs.mkdtempSync(Path.join(native.dir, "untar-"))
      execFileSync("tar", ["-x", "-f", "-", "-C", out], { input: archive })
      const back = Path.join(out, "src")
      expect(Fs.readFileSync(Path.join(back, "a.txt"), "utf8")).toBe("hello\n")
      expect(Fs.readFileSync(Path.join(back, "hard"), "utf8")).toBe("hello\n")
      expect(Fs.statSync(Path.join(back, "run.sh")).mode & 0o777).toBe(0o755)
      expect(Fs.statSync(Path.join(back, "a.txt")).mtimeMs).toBe(1_700_000_000_000)
      expect(Fs.readFileSync(Path.join(back, longDir, longFile))).toEqual(Buffer.alloc(70_000, 1))
      expect(Fs.readlinkSync(Path.join(back, "longlink"))).toBe(longTarget)
      expect(Fs.readFileSync(Path.join(back, "link"), "utf8")).toBe("hello\n")
      expect(Fs.lstatSync(Path.join(back, "pipe")).isFIFO()).toBe(true)
      expect(Fs.readdirSync(Path.join(back, "empty"))).toEqual([])
    })

    it("reads back with the host's tar reader (src/oci/tar.ts)", async () => {
      const { root, src } = tree()
      const archive = tarOf(root, src)
      const entries: Array<TarEntry> = []
      await Effect.runPromise(readTar(Stream.make(new Uint8Array(archive)), "export", (entry, body) =>
        Effect.sync(() => entries.push(entry)).pipe(Effect.zipRight(body.forEachChunk(() => Effect.void)))))
      const byPath = Object.fromEntries(entries.map((e) => [e.path, e]))
      expect(byPath[`src/${longDir}/${longFile}`]).toMatchObject({ type: "file", size: 70_000 })
      expect(byPath["src/longlink"]).toMatchObject({ type: "symlink", linkname: longTarget })
      expect(byPath["src/pipe"]).toMatchObject({ type: "fifo", size: 0 })
      expect(byPath["src/run.sh"]).toMatchObject({ type: "file", mode: 0o755, mtime: 1_700_000_000 })
      expect(entries.length).toBe(11)
    })

    it("names a single file by itself, and the root by its own name", () => {
      const { root, src } = tree()
      const one = execFileSync("tar", ["-tf", "-"], { input: tarOf(root, `${src}/a.txt`) }).toString()
      expect(one).toBe("a.txt\n")
      const whole = execFileSync("tar", ["-tf", "-"], { input: tarOf(root, root) }).toString().split("\n")
      expect(whole).toContain("workspace/")
      expect(whole).toContain("workspace/src/a.txt")
      const link = execFileSync("tar", ["-tvf", "-"], { input: tarOf(root, `${src}/outlink`) }).toString()
      expect(link).toMatch(/^l.* outlink -> /)
    })

    it("carries a negative mtime in pax, and leaves a socket out with a warning", async () => {
      const { root } = fresh("workspace")
      Fs.writeFileSync(Path.join(root, "old"), "")
      execFileSync("touch", ["-d", "@-86400", Path.join(root, "old")]) // Node's utimes takes a negative time as now
      const server = Net.createServer()
      await new Promise<void>((resolve) => server.listen(Path.join(root, "sock"), resolve))
      try {
        const listed = parseList(run(root, ["list", root]).stdout)
        expect(listed.entries.find((e) => e.path.endsWith("/sock"))?.type).toBe("other")
        const r = run(root, ["tar", root])
        expect(r.status).toBe(0)
        expect(r.stderr).toBe(`fs: tar: ${root}/sock: socket left out (tar has no type for it)\n`)
        const out = Fs.mkdtempSync(Path.join(native.dir, "untar-"))
        execFileSync("tar", ["-x", "-f", "-", "-C", out], { input: r.stdout, stdio: ["pipe", "pipe", "ignore"] })
        expect(Fs.readdirSync(Path.join(out, "workspace"))).toEqual(["old"])
        expect(Fs.statSync(Path.join(out, "workspace/old")).mtimeMs).toBe(-86_400_000)
      } finally {
        server.close()
      }
    })

    /** Resolves once process `pid` has read into `file` (its offset there, from /proc, is past 0). */
    const readingStarted = async (pid: number, file: string) => {
      for (let tries = 0; tries < 1000; tries++) {
        const fds = Fs.readdirSync(`/proc/${pid}/fd`)
        const fd = fds.find((n) => {
          try {
            return Fs.readlinkSync(`/proc/${pid}/fd/${n}`) === file
          } catch {
            return false
          }
        })
        if (fd !== undefined && !/^pos:\s+0$/m.test(Fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"))) return
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      throw new Error(`process ${pid} never read ${file}`)
    }

    it("keeps the stream whole when a file shrinks while it is read: zeros to its stored size, and a warning", async () => {
      const { root } = fresh("workspace")
      const big = Path.join(root, "big")
      Fs.writeFileSync(big, Buffer.alloc(8 << 20, 1))
      const child = spawn(native.tool, ["fs", "--root", root, "tar", big])
      const stderr: Array<Buffer> = []
      child.stderr.on("data", (b: Buffer) => stderr.push(b))
      // Nobody reads stdout yet: the tool blocks on a full pipe long before the end of the file.
      await readingStarted(child.pid!, big)
      Fs.truncateSync(big, 1000)
      const chunks: Array<Buffer> = []
      child.stdout.on("data", (b: Buffer) => chunks.push(b))
      const status = await new Promise((resolve) => child.on("close", resolve))
      expect(status).toBe(0)
      expect(Buffer.concat(stderr).toString()).toBe(`fs: tar: ${big}: file shrank while being read; padded with zeros\n`)
      const out = Fs.mkdtempSync(Path.join(native.dir, "untar-"))
      execFileSync("tar", ["-x", "-f", "-", "-C", out], { input: Buffer.concat(chunks) })
      const back = Fs.readFileSync(Path.join(out, "big"))
      expect(back.byteLength).toBe(8 << 20)
      expect(back.subarray(0, 1000).every((b) => b === 1)).toBe(true)
      expect(back.subarray(back.byteLength - 1000).every((b) => b === 0)).toBe(true)
    })

    it("refuses a PATH through a link out", () => {
      const { root, src } = tree()
      const r = run(root, ["tar", `${src}/outlink/secret`])
      expect(r.status).toBe(4)
      expect(r.stdout.byteLength).toBe(0)
    })
  })
})
