/**
 * The workspace import path with directory sources (and archives made from
 * them): a real git repository goes through inspect + the sanitized stream and
 * comes out identical under GNU tar and BusyBox tar; memory stays bounded on a
 * 50 MB file; unsafe trees and unusable sources are refused with typed errors.
 * Host only, no VMs.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import { execFileSync, spawn } from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import * as Zlib from "node:zlib"
import { ImportSourceError, UnsafeImportEntry } from "../../src/workspace/import/errors.js"
import { importTarStream, inspectImportSource } from "../../src/workspace/import/source.js"

const scratchDirs: Array<string> = []
const scratch = (name: string) => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), `pyro-import-${name}-`))
  scratchDirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of scratchDirs) Fs.rmSync(dir, { recursive: true, force: true })
})

const BUSYBOX = "/bin/busybox"
const hasBusybox = Fs.existsSync(BUSYBOX)

/** Feed `stream` to a tar child's stdin (with backpressure); its exit code and stderr, and how the stream ended. */
const pipeToTar = <E>(stream: Stream.Stream<Uint8Array, E>, command: string, args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const child = spawn(command, args, { stdio: ["pipe", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (d: Buffer) => void (stderr += d.toString()))
    child.stdin.on("error", () => undefined) // EPIPE when tar stops early
    const exited = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? -1)))
    const fed = yield* Stream.runForEach(stream, (chunk) =>
      Effect.async<void>((resume) => {
        if (child.stdin.write(chunk)) return resume(Effect.void)
        const done = () => {
          child.stdin.off("drain", done)
          child.off("close", done)
          resume(Effect.void)
        }
        child.stdin.once("drain", done)
        child.once("close", done)
      })).pipe(Effect.either, Effect.ensuring(Effect.sync(() => child.stdin.end())))
    const code = yield* Effect.promise(() => exited)
    return { fed, code, stderr }
  })

interface Node {
  readonly type: "file" | "dir" | "symlink" | "other"
  readonly mode: number
  readonly mtime: number
  readonly hash?: string
  readonly target?: string
}

const sha256 = (file: string) => {
  const hash = Crypto.createHash("sha256")
  const fd = Fs.openSync(file, "r")
  const buffer = Buffer.alloc(1 << 20)
  for (;;) {
    const n = Fs.readSync(fd, buffer, 0, buffer.length, null)
    if (n === 0) break
    hash.update(buffer.subarray(0, n))
  }
  Fs.closeSync(fd)
  return hash.digest("hex")
}

/** Everything under `root` (not the root), by relative path. */
const snapshot = (root: string): Map<string, Node> => {
  const out = new Map<string, Node>()
  const walk = (rel: string) => {
    for (const name of Fs.readdirSync(Path.join(root, rel)).sort()) {
      const childRel = rel ? `${rel}/${name}` : name
      const abs = Path.join(root, childRel)
      const st = Fs.lstatSync(abs)
      const base = { mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) }
      if (st.isSymbolicLink()) out.set(childRel, { type: "symlink", ...base, mode: 0, target: Fs.readlinkSync(abs) })
      else if (st.isFile()) out.set(childRel, { type: "file", ...base, hash: sha256(abs) })
      else if (st.isDirectory()) {
        out.set(childRel, { type: "dir", ...base })
        walk(childRel)
      } else out.set(childRel, { type: "other", ...base })
    }
  }
  walk("")
  return out
}

const withoutMtimes = (tree: Map<string, Node>, keep: (node: Node) => boolean) =>
  new Map([...tree].map(([k, v]) => [k, keep(v) ? v : { ...v, mtime: 0 }]))

const BIG_BYTES = 50 * 1024 * 1024

/** A 50 MB file written 1 MiB at a time, each MiB different. */
const writeBigFile = (file: string) => {
  const fd = Fs.openSync(file, "w")
  const mib = Buffer.alloc(1 << 20)
  for (let i = 0; i < BIG_BYTES / mib.length; i++) {
    for (let j = 0; j < mib.length; j += 4096) mib.writeUInt32BE(i * 1_000_003 + j, j)
    Fs.writeSync(fd, mib)
  }
  Fs.closeSync(fd)
}

const git = (cwd: string, ...args: Array<string>) =>
  execFileSync("git", ["-C", cwd, ...args], {
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "Pyro Test",
      GIT_AUTHOR_EMAIL: "pyro@example.invalid",
      GIT_COMMITTER_NAME: "Pyro Test",
      GIT_COMMITTER_EMAIL: "pyro@example.invalid",
      GIT_CONFIG_NOSYSTEM: "1",
      HOME: Os.tmpdir()
    }
  })

/** A repository: nested dirs, a relative symlink, an executable, an empty dir, a 50 MB file, one commit. */
const makeRepository = (root: string) => {
  Fs.mkdirSync(Path.join(root, "src/lib/deep"), { recursive: true })
  Fs.mkdirSync(Path.join(root, "docs"))
  Fs.mkdirSync(Path.join(root, "empty"))
  Fs.writeFileSync(Path.join(root, "README.md"), "# demo\n")
  Fs.writeFileSync(Path.join(root, "src/main.ts"), "export const main = () => 42\n")
  Fs.writeFileSync(Path.join(root, "src/lib/util.ts"), "export const util = 1\n")
  Fs.writeFileSync(Path.join(root, "src/lib/deep/data.json"), JSON.stringify({ a: [1, 2, 3] }))
  Fs.writeFileSync(Path.join(root, "docs/notes with spaces ü.txt"), "unicode name\n")
  Fs.writeFileSync(Path.join(root, "build.sh"), "#!/bin/sh\necho build\n")
  Fs.chmodSync(Path.join(root, "build.sh"), 0o755)
  Fs.symlinkSync("../README.md", Path.join(root, "docs/readme-link"))
  Fs.symlinkSync("lib/util.ts", Path.join(root, "src/util-link.ts"))
  writeBigFile(Path.join(root, "big.bin"))
  git(root, "init", "-q", "-b", "main")
  git(root, "add", "-A")
  git(root, "commit", "-q", "-m", "initial commit")
  // Distinct whole-second mtimes on the work tree, directories last (children first).
  let t = 1_000_000_000
  const stamp = (rel: string) => {
    const abs = Path.join(root, rel)
    const st = Fs.lstatSync(abs)
    if (st.isDirectory()) {
      for (const name of Fs.readdirSync(abs)) if (!(rel === "" && name === ".git")) stamp(rel ? `${rel}/${name}` : name)
    }
    if (rel !== "") Fs.lutimesSync(abs, t, (t += 7))
  }
  stamp("")
}

describe("import from a directory: a git repository", () => {
  let repo = ""
  let repoTree = new Map<string, Node>()
  beforeAll(() => {
    repo = Path.join(scratch("repo"), "project")
    Fs.mkdirSync(repo)
    makeRepository(repo)
    repoTree = snapshot(repo)
  }, 120_000)

  it.effect("inspect counts what will be sent", () =>
    Effect.gen(function*() {
      const summary = yield* inspectImportSource(repo)
      const nodes = [...repoTree.values()]
      const files = [...repoTree].filter(([, n]) => n.type === "file")
      expect(summary.kind).toBe("directory")
      expect(summary.files).toBe(files.length)
      expect(summary.directories).toBe(nodes.filter((n) => n.type === "dir").length)
      expect(summary.symlinks).toBe(2)
      expect(summary.hardlinks).toBe(0)
      const bytes = files.reduce((sum, [rel]) => sum + Fs.statSync(Path.join(repo, rel)).size, 0)
      expect(summary.bytes).toBe(bytes)
      expect(summary.bytes).toBeGreaterThan(BIG_BYTES)
      expect(summary.neutralised).toEqual([])
    }))

  it.effect("GNU tar extracts the stream into an identical tree and the repository still works", () =>
    Effect.gen(function*() {
      const out = scratch("gnu")
      const { code, fed, stderr } = yield* pipeToTar(importTarStream(repo), "tar", ["-x", "-f", "-", "-C", out])
      expect(Either.isRight(fed)).toBe(true)
      expect(stderr).toBe("")
      expect(code).toBe(0)
      const tree = snapshot(out)
      expect([...tree.keys()]).toEqual([...repoTree.keys()])
      expect(tree).toEqual(repoTree) // contents, modes, mtimes (directories and symlinks too), link targets
      expect(tree.get("build.sh")?.mode).toBe(0o755)
      expect(tree.get("empty")?.type).toBe("dir")
      expect(tree.get("docs/readme-link")?.target).toBe("../README.md")
      expect(git(out, "status", "--porcelain")).toBe("")
      expect(git(out, "log", "--format=%s")).toBe("initial commit\n")
      expect(git(out, "fsck", "--no-progress").trim()).toBe("")
    }))

  it.effect("BusyBox tar extracts the same stream into the same tree", () =>
    Effect.gen(function*() {
      if (!hasBusybox) {
        console.warn(`skipped: ${BUSYBOX} is missing (install busybox-static)`)
        return
      }
      const out = scratch("busybox")
      const { code, fed, stderr } = yield* pipeToTar(importTarStream(repo), BUSYBOX, ["tar", "-x", "-f", "-", "-C", out])
      expect(Either.isRight(fed)).toBe(true)
      expect(stderr).toBe("")
      expect(code).toBe(0)
      // BusyBox restores the mtimes of files only (not of directories or symlinks).
      const files = (n: Node) => n.type === "file"
      expect(withoutMtimes(snapshot(out), files)).toEqual(withoutMtimes(repoTree, files))
      expect(git(out, "status", "--porcelain")).toBe("")
    }))

  it.effect("an archive of the tree (.tar.gz) gives the same stream contents", () =>
    Effect.gen(function*() {
      const dir = scratch("tgz")
      const archive = Path.join(dir, "project.tgz")
      execFileSync("tar", ["-c", "-z", "-f", archive, "-C", repo, "."])
      const summary = yield* inspectImportSource(archive)
      const fromDir = yield* inspectImportSource(repo)
      expect(summary).toEqual({ ...fromDir, kind: "archive" })
      const out = Path.join(dir, "out")
      Fs.mkdirSync(out)
      const { code, stderr } = yield* pipeToTar(importTarStream(archive), "tar", ["-x", "-f", "-", "-C", out])
      expect(stderr).toBe("")
      expect(code).toBe(0)
      expect(snapshot(out)).toEqual(repoTree)
    }))

  describe("memory", () => {
    V8.setFlagsFromString("--expose-gc")
    const gc = Vm.runInNewContext("gc") as () => void

    /** Consume the stream, measuring retained heap + ArrayBuffer memory (after a GC) every 4 MiB. */
    const measure = (stream: Stream.Stream<Uint8Array, unknown>) =>
      Effect.gen(function*() {
        gc()
        const used = () => {
          const m = process.memoryUsage()
          return m.heapUsed + m.arrayBuffers
        }
        const baseline = used()
        let total = 0
        let nextSample = 0
        let peak = 0
        let biggestChunk = 0
        yield* Stream.runForEach(stream, (chunk) =>
          Effect.sync(() => {
            total += chunk.byteLength
            biggestChunk = Math.max(biggestChunk, chunk.byteLength)
            if (total >= nextSample) {
              nextSample += 4 << 20
              gc()
              peak = Math.max(peak, used() - baseline)
            }
          }))
        return { total, peak, biggestChunk }
      })

    it.effect("streaming a directory with a 50 MB file keeps memory bounded", () =>
      Effect.gen(function*() {
        const { biggestChunk, peak, total } = yield* measure(importTarStream(repo))
        expect(total).toBeGreaterThan(BIG_BYTES)
        expect(biggestChunk).toBeLessThanOrEqual(64 * 1024)
        expect(peak).toBeLessThan(8 << 20)
      }))

    it.effect("streaming a .tar.gz with a 50 MB file keeps memory bounded", () =>
      Effect.gen(function*() {
        const dir = scratch("mem")
        const archive = Path.join(dir, "project.tar.gz")
        execFileSync("tar", ["-c", "-z", "-f", archive, "-C", repo, "."])
        const { biggestChunk, peak, total } = yield* measure(importTarStream(archive))
        expect(total).toBeGreaterThan(BIG_BYTES)
        expect(biggestChunk).toBeLessThanOrEqual(64 * 1024)
        expect(peak).toBeLessThan(8 << 20)
      }))

    it.live("a consumer that stops early releases the source's file descriptors", () =>
      Effect.gen(function*() {
        const dir = scratch("early")
        const archive = Path.join(dir, "project.tar.gz")
        execFileSync("tar", ["-c", "-z", "-f", archive, "-C", repo, "."])
        const openFds = () => Fs.readdirSync("/proc/self/fd").length
        const before = openFds()
        for (const source of [repo, archive]) {
          // Stop 20 MiB in: in the middle of big.bin (everything else is small).
          let seen = 0
          yield* Stream.runDrain(Stream.takeWhile(importTarStream(source), (chunk) => (seen += chunk.byteLength) < 20 << 20))
          expect(seen).toBeGreaterThanOrEqual(20 << 20)
        }
        yield* Effect.sleep("50 millis")
        expect(openFds()).toBe(before)
      }))
  })
})

const expectUnsafe = (path: string, entry: string, reason: RegExp) =>
  Effect.gen(function*() {
    const inspected = yield* Effect.flip(inspectImportSource(path))
    expect(inspected).toBeInstanceOf(UnsafeImportEntry)
    expect(inspected).toMatchObject({ _tag: "UnsafeImportEntry", source: path, entry })
    expect((inspected as UnsafeImportEntry).reason).toMatch(reason)
    expect(inspected.message).toContain(JSON.stringify(entry))
    const streamed = yield* Effect.flip(Stream.runDrain(importTarStream(path)))
    expect(streamed).toMatchObject({ _tag: "UnsafeImportEntry", source: path, entry })
  })

const expectSourceError = (path: string, detail: RegExp) =>
  Effect.gen(function*() {
    const inspected = yield* Effect.flip(inspectImportSource(path))
    expect(inspected).toBeInstanceOf(ImportSourceError)
    expect(inspected).toMatchObject({ _tag: "ImportSourceError", source: path })
    expect((inspected as ImportSourceError).detail).toMatch(detail)
    const streamed = yield* Effect.flip(Stream.runDrain(importTarStream(path)))
    expect(streamed).toMatchObject({ _tag: "ImportSourceError", source: path })
  })

describe("import from a directory: refusals", () => {
  const tree = (name: string, build: (root: string) => void) => {
    const root = Path.join(scratch(name), "src")
    Fs.mkdirSync(root)
    Fs.writeFileSync(Path.join(root, "ok.txt"), "fine\n")
    build(root)
    return root
  }

  it.effect("a symlink to an absolute path", () =>
    expectUnsafe(tree("abs", (r) => Fs.symlinkSync("/etc", Path.join(r, "etc-link"))), "etc-link", /absolute path/))

  it.effect("a symlink that escapes the tree", () =>
    expectUnsafe(
      tree("escape", (r) => {
        Fs.mkdirSync(Path.join(r, "sub"))
        Fs.symlinkSync("../../outside", Path.join(r, "sub/up"))
      }),
      "sub/up",
      /resolves outside/
    ))

  it.effect("a symlink that escapes through another symlink of the tree", () =>
    expectUnsafe(
      tree("chain", (r) => {
        Fs.mkdirSync(Path.join(r, "a/b/c"), { recursive: true })
        Fs.symlinkSync("s/..", Path.join(r, "a/b/c/l")) // fine on its own...
        Fs.symlinkSync("../../..", Path.join(r, "a/b/c/s")) // ...but s leads to the root, so l to its parent
      }),
      "a/b/c/s",
      /earlier symlink "a\/b\/c\/l"/
    ))

  it.effect("a FIFO", () =>
    expectUnsafe(tree("fifo", (r) => execFileSync("mkfifo", [Path.join(r, "pipe")])), "pipe", /FIFO/))

  it.effect("a socket", () =>
    Effect.gen(function*() {
      const root = tree("socket", () => undefined)
      const server = Net.createServer()
      yield* Effect.promise(() => new Promise<void>((resolve) => server.listen(Path.join(root, "agent.sock"), resolve)))
      yield* expectUnsafe(root, "agent.sock", /socket/).pipe(
        Effect.ensuring(Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve()))))
      )
    }))

  it.effect("setuid and setgid bits are cleared and listed, not refused", () =>
    Effect.gen(function*() {
      const root = tree("setuid", (r) => {
        Fs.writeFileSync(Path.join(r, "su"), "#!/bin/sh\n")
        Fs.chmodSync(Path.join(r, "su"), 0o4755)
        Fs.mkdirSync(Path.join(r, "shared"))
        Fs.chmodSync(Path.join(r, "shared"), 0o2775)
      })
      const summary = yield* inspectImportSource(root)
      expect(summary.neutralised).toEqual(["shared", "su"])
      const out = scratch("setuid-out")
      const { code } = yield* pipeToTar(importTarStream(root), "tar", ["-x", "-f", "-", "-C", out])
      expect(code).toBe(0)
      expect(Fs.statSync(Path.join(out, "su")).mode & 0o7777).toBe(0o755)
      expect(Fs.statSync(Path.join(out, "shared")).mode & 0o7777).toBe(0o775)
    }))

  it.effect("hard links inside the tree come out as separate files", () =>
    Effect.gen(function*() {
      const root = tree("hardlink", (r) => Fs.linkSync(Path.join(r, "ok.txt"), Path.join(r, "same.txt")))
      const summary = yield* inspectImportSource(root)
      expect(summary).toMatchObject({ files: 2, hardlinks: 0 })
      const out = scratch("hardlink-out")
      yield* pipeToTar(importTarStream(root), "tar", ["-x", "-f", "-", "-C", out])
      expect(Fs.readFileSync(Path.join(out, "same.txt"), "utf8")).toBe("fine\n")
    }))
})

describe("import sources that cannot be used", () => {
  it.effect("a missing path", () =>
    expectSourceError(Path.join(scratch("missing"), "nope"), /no such file or directory/))

  it.effect("a plain text file", () =>
    Effect.gen(function*() {
      const dir = scratch("text")
      const small = Path.join(dir, "notes.txt")
      Fs.writeFileSync(small, "just some notes\n")
      yield* expectSourceError(small, /neither a directory nor a tar/)
      const large = Path.join(dir, "long.txt")
      Fs.writeFileSync(large, "lorem ipsum\n".repeat(500))
      yield* expectSourceError(large, /neither a directory nor a tar/)
      const empty = Path.join(dir, "empty.tar")
      Fs.writeFileSync(empty, "")
      yield* expectSourceError(empty, /empty file/)
    }))

  it.effect("a truncated .tar.gz", () =>
    Effect.gen(function*() {
      const dir = scratch("truncated")
      const content = Path.join(dir, "content")
      Fs.mkdirSync(content)
      Fs.writeFileSync(Path.join(content, "random.bin"), Crypto.randomBytes(256 * 1024))
      const whole = execFileSync("tar", ["-c", "-z", "-f", "-", "-C", content, "."])
      const archive = Path.join(dir, "cut.tar.gz")
      Fs.writeFileSync(archive, whole.subarray(0, Math.floor(whole.length / 2)))
      yield* expectSourceError(archive, /corrupt or truncated gzip data/)
    }))

  it.effect("a gzip file that is not a tar archive, and a tar cut at an entry boundary", () =>
    Effect.gen(function*() {
      const dir = scratch("corrupt")
      const notTar = Path.join(dir, "notes.txt.gz")
      Fs.writeFileSync(notTar, Zlib.gzipSync("lorem ipsum\n".repeat(100)))
      yield* expectSourceError(notTar, /not a valid tar archive \(corrupt, truncated or unsupported\): header checksum mismatch/)
      const content = Path.join(dir, "content")
      Fs.mkdirSync(content)
      Fs.writeFileSync(Path.join(content, "a.txt"), "a".repeat(1000))
      const whole = execFileSync("tar", ["-c", "-f", "-", "-C", content, "a.txt"])
      const cut = Path.join(dir, "cut.tar")
      Fs.writeFileSync(cut, whole.subarray(0, 512 + 1024)) // header + content, no end marker
      yield* expectSourceError(cut, /truncated archive: it ends without the end-of-archive marker/)
    }))

  it.effect("a source that is a FIFO is not read", () =>
    Effect.gen(function*() {
      const fifo = Path.join(scratch("fifo-source"), "pipe.tar")
      execFileSync("mkfifo", [fifo])
      yield* expectSourceError(fifo, /neither a directory nor/)
    }))

  it.effect("the stream does nothing until it is run", () =>
    Effect.sync(() => {
      importTarStream(Path.join(Os.tmpdir(), "does-not-exist-pyro")) // no error thrown, nothing read
    }))
})
