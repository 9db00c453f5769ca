/**
 * The workspace import path with archive sources: every escape class, written
 * as raw (unsanitised) tar headers, plain and gzip-compressed, is refused by
 * inspect and by the stream, naming the entry, and whatever the stream emitted
 * before failing extracts harmlessly. Plus the policy and the tar writer on
 * their own. Host only, no VMs.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import { execFileSync, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Zlib from "node:zlib"
import { readTar, type TarEntry } from "../../src/archive/read.js"
import { ImportSourceError, UnsafeImportEntry } from "../../src/workspace/import/errors.js"
import { type EntryInput, makeEntryPolicy } from "../../src/archive/policy.js"
import { importTarStream, inspectImportSource } from "../../src/workspace/import/source.js"
import { tarEnd, tarEntry, tarHeader } from "../../src/archive/write.js"
import { END_OF_ARCHIVE, padToBlock, paxRecord, ustarHeader } from "../support/ustar.js"

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

// ---------------------------------------------------------------------------
// Raw, hostile archives: headers written by hand, nothing sanitised.

interface Raw {
  readonly name: string
  /** ustar typeflag: 0 file, 1 hard link, 2 symlink, 3 char, 4 block, 5 dir, 6 FIFO. */
  readonly type: "0" | "1" | "2" | "3" | "4" | "5" | "6"
  readonly mode?: number
  readonly data?: string
  readonly linkname?: string
  /** pax records to put in an `x` header before this entry. */
  readonly pax?: Readonly<Record<string, string>>
}

const rawHeader = (f: { name: string; mode: number; size: number; type: string; linkname: string }) =>
  ustarHeader({ ...f, typeflag: f.type, uid: 1000, gid: 1000, mtime: 1_600_000_000, device: { major: 1, minor: 3 } })

const rawArchive = (entries: ReadonlyArray<Raw>): Buffer =>
  Buffer.concat([
    ...entries.flatMap((e) => {
      const data = Buffer.from(e.data ?? "")
      const parts: Array<Buffer> = []
      if (e.pax) {
        const records = Buffer.from(Object.entries(e.pax).map(([k, v]) => paxRecord(k, v)).join(""))
        parts.push(rawHeader({ name: "PaxHeader", mode: 0o644, size: records.length, type: "x", linkname: "" }), padToBlock(records))
      }
      const mode = e.mode ?? (e.type === "5" ? 0o755 : 0o644)
      parts.push(rawHeader({ name: e.name, mode, size: data.length, type: e.type, linkname: e.linkname ?? "" }), padToBlock(data))
      return parts
    }),
    END_OF_ARCHIVE
  ])

const file = (name: string, data = "x", mode?: number): Raw => ({ name, type: "0", data, ...(mode === undefined ? {} : { mode }) })
const dir = (name: string, mode?: number): Raw => ({ name, type: "5", ...(mode === undefined ? {} : { mode }) })
const symlink = (name: string, linkname: string): Raw => ({ name, type: "2", linkname })
const hardlink = (name: string, linkname: string): Raw => ({ name, type: "1", linkname })

/** Entry paths and link targets of a (possibly partial) tar stream, read with the project's reader. */
const listTar = (bytes: Uint8Array) =>
  Effect.gen(function*() {
    const entries: Array<TarEntry> = []
    yield* readTar(Stream.make(bytes), "partial", (entry) => Effect.sync(() => void entries.push(entry)))
    return entries
  })

const collect = <E>(stream: Stream.Stream<Uint8Array, E>) =>
  Effect.gen(function*() {
    const chunks: Array<Uint8Array> = []
    const result = yield* Stream.runForEach(stream, (chunk) => Effect.sync(() => void chunks.push(chunk))).pipe(Effect.either)
    return { bytes: Buffer.concat(chunks), result }
  })

interface Escape {
  readonly name: string
  readonly entries: ReadonlyArray<Raw>
  /** The entry the refusal must name, as stored in the archive. */
  readonly refused: string
  readonly reason: RegExp
  /** Normalised names of the entries before it, which the partial stream may contain. */
  readonly before?: ReadonlyArray<string>
}

const ESCAPES: ReadonlyArray<Escape> = [
  { name: "absolute", entries: [file("/etc/pyro-evil")], refused: "/etc/pyro-evil", reason: /absolute path/ },
  { name: "dotdot", entries: [file("../pyro-evil")], refused: "../pyro-evil", reason: /"\.\." component/ },
  {
    name: "inner-dotdot",
    entries: [dir("a/"), file("a/../../pyro-evil")],
    refused: "a/../../pyro-evil",
    reason: /"\.\." component/,
    before: ["a"]
  },
  {
    name: "symlink-to-etc-then-through",
    entries: [symlink("link", "/etc"), file("link/passwd", "root::0:0::/:/bin/sh\n")],
    refused: "link",
    reason: /symlink to an absolute path/
  },
  {
    name: "write-through-inner-symlink",
    entries: [dir("sub/"), symlink("link", "sub"), file("link/passwd")],
    refused: "link/passwd",
    reason: /written through the symlink "link"/,
    before: ["sub", "link"]
  },
  { name: "symlink-up", entries: [symlink("up", "../../..")], refused: "up", reason: /resolves outside/ },
  {
    name: "nested-symlink-up",
    entries: [dir("./a/b/"), symlink("./a/b/up", "../../../x")],
    refused: "./a/b/up",
    reason: /resolves outside/,
    before: ["a/b"]
  },
  {
    name: "symlink-chain",
    entries: [dir("a/b/c/"), symlink("a/b/c/l", "s/.."), symlink("a/b/c/s", "../../..")],
    refused: "a/b/c/s",
    reason: /earlier symlink "a\/b\/c\/l"/,
    before: ["a/b/c", "a/b/c/l"]
  },
  { name: "symlink-loop", entries: [symlink("x", "y/z"), symlink("y", "x/w")], refused: "y", reason: /loop/, before: ["x"] },
  { name: "hardlink-etc-passwd", entries: [hardlink("pw", "/etc/passwd")], refused: "pw", reason: /hard link to an absolute/ },
  { name: "hardlink-missing", entries: [hardlink("pw", "not-in-archive")], refused: "pw", reason: /not a regular file earlier/ },
  {
    name: "hardlink-later",
    entries: [hardlink("pw", "later"), file("later")],
    refused: "pw",
    reason: /not a regular file earlier/
  },
  {
    name: "hardlink-dotdot",
    entries: [file("f"), hardlink("pw", "../f")],
    refused: "pw",
    reason: /"\.\." component/,
    before: ["f"]
  },
  { name: "hardlink-to-dir", entries: [dir("d/"), hardlink("pw", "d")], refused: "pw", reason: /not a regular file/, before: ["d"] },
  { name: "char-device", entries: [{ name: "null", type: "3" }], refused: "null", reason: /character device/ },
  { name: "block-device", entries: [{ name: "sda", type: "4" }], refused: "sda", reason: /block device/ },
  { name: "fifo", entries: [file("ok.txt"), { name: "pipe", type: "6" }], refused: "pipe", reason: /FIFO/, before: ["ok.txt"] },
  {
    name: "symlink-replaced-by-file",
    entries: [symlink("s", "."), file("s")],
    refused: "s",
    reason: /replace the symlink/,
    before: ["s"]
  },
  {
    name: "dir-replaced-by-symlink",
    entries: [dir("d/"), file("d/x"), symlink("d", ".")],
    refused: "d",
    reason: /would replace an earlier entry/,
    before: ["d", "d/x"]
  },
  { name: "nul-in-name", entries: [{ ...file("placeholder"), pax: { path: "a\0b" } }], refused: "a\0b", reason: /NUL/ },
  {
    name: "name-too-long",
    entries: [{ ...file("placeholder"), pax: { path: `${"d/".repeat(2100)}f` } }],
    refused: `${"d/".repeat(2100)}f`,
    reason: /longer than 4096 bytes/
  },
  { name: "root-as-file", entries: [file("./")], refused: "./", reason: /destination directory itself/ }
]

describe("archive sources: every escape class is refused", () => {
  const archives = scratch("escapes")
  for (const escape of ESCAPES) {
    for (const gzip of [false, true]) {
      const label = `${escape.name}${gzip ? ".tar.gz" : ".tar"}`
      it.effect(label, () =>
        Effect.gen(function*() {
          const raw = rawArchive(escape.entries)
          const archive = Path.join(archives, label)
          Fs.writeFileSync(archive, gzip ? Zlib.gzipSync(raw) : raw)

          const inspected = yield* Effect.flip(inspectImportSource(archive))
          expect(inspected).toBeInstanceOf(UnsafeImportEntry)
          expect(inspected).toMatchObject({ source: archive, entry: escape.refused })
          expect((inspected as UnsafeImportEntry).reason).toMatch(escape.reason)
          expect(inspected.message).toContain(archive)

          const { bytes, result } = yield* collect(importTarStream(archive))
          expect(Either.isLeft(result)).toBe(true)
          if (Either.isLeft(result)) expect(result.left).toMatchObject({ _tag: "UnsafeImportEntry", entry: escape.refused })

          // What went out before the failure is exactly the safe entries before the refused one...
          const partial = yield* listTar(bytes)
          expect(partial.map((e) => e.path.replace(/\/$/, ""))).toEqual(escape.before ?? [])
          // ...and extracting it writes nothing outside the destination.
          const box = scratch(`box-${escape.name}`)
          const dest = Path.join(box, "dest")
          const sentinel = Path.join(box, "sentinel")
          Fs.mkdirSync(dest)
          Fs.mkdirSync(sentinel)
          spawnSync("tar", ["-x", "-f", "-", "-C", dest], { input: bytes })
          expect(Fs.readdirSync(box).sort()).toEqual(["dest", "sentinel"])
          expect(Fs.readdirSync(sentinel)).toEqual([])
          expect(Fs.existsSync("/etc/pyro-evil")).toBe(false)
        }))
    }
  }

  it.effect("setuid and setgid bits are cleared and listed, not refused", () =>
    Effect.gen(function*() {
      for (const gzip of [false, true]) {
        const raw = rawArchive([file("tool", "#!/bin/sh\n", 0o4755), dir("shared/", 0o2775), file("plain", "", 0o644)])
        const archive = Path.join(archives, `setuid${gzip ? ".tgz" : ".tar"}`)
        Fs.writeFileSync(archive, gzip ? Zlib.gzipSync(raw) : raw)
        const summary = yield* inspectImportSource(archive)
        expect(summary).toEqual({
          kind: "archive",
          files: 2,
          directories: 1,
          symlinks: 0,
          hardlinks: 0,
          bytes: 10,
          neutralised: ["tool", "shared"]
        })
        const { bytes, result } = yield* collect(importTarStream(archive))
        expect(Either.isRight(result)).toBe(true)
        const out = scratch("setuid-out")
        execFileSync("tar", ["-x", "-f", "-", "-C", out], { input: bytes })
        expect(Fs.statSync(Path.join(out, "tool")).mode & 0o7777).toBe(0o755)
        expect(Fs.statSync(Path.join(out, "shared")).mode & 0o7777).toBe(0o775)
        // Owned by root whatever the archive said (uid 1000 in the raw headers).
        const listed = yield* listTar(bytes)
        expect(listed.every((e) => e.uid === 0 && e.gid === 0)).toBe(true)
      }
    }))
})

describe("archive sources: what is accepted", () => {
  const LONG_DIR = `${"long-directory-name-".repeat(6)}end` // 123 bytes
  const LONG_FILE = `${"file-".repeat(30)}.txt` // 154 bytes: needs pax
  const entries: ReadonlyArray<Raw> = [
    dir("./"),
    dir("./src/"),
    file("./src/main.c", "int main(void) { return 0; }\n", 0o644),
    file("./run.sh", "#!/bin/sh\n", 0o755),
    hardlink("./src/main-copy.c", "./src/main.c"),
    dir("./lib/"),
    symlink("./lib/current", "../src"),
    symlink("./lib/main", "current/main.c"), // resolves through another symlink, stays inside
    symlink("./dangling", "does/not/exist"),
    { ...dir("placeholder-dir/"), pax: { path: `./${LONG_DIR}/` } },
    { ...file("placeholder", "deep\n"), pax: { path: `./${LONG_DIR}/${LONG_FILE}` } },
    { ...symlink("placeholder-link", ""), pax: { path: "./long-link", linkpath: `${LONG_DIR}/${LONG_FILE}` } },
    file("./ünïcødé.txt", "ü\n")
  ]

  it.effect("a benign archive with ./ names, links, pax long names and unicode", () =>
    Effect.gen(function*() {
      const box = scratch("benign")
      for (const gzip of [false, true]) {
        const archive = Path.join(box, gzip ? "ok.tgz" : "ok.tar")
        const raw = rawArchive(entries)
        Fs.writeFileSync(archive, gzip ? Zlib.gzipSync(raw) : raw)
        const summary = yield* inspectImportSource(archive)
        expect(summary).toMatchObject({ kind: "archive", files: 4, directories: 3, symlinks: 4, hardlinks: 1, neutralised: [] })

        const { bytes, result } = yield* collect(importTarStream(archive))
        expect(Either.isRight(result)).toBe(true)
        const listed = yield* listTar(bytes)
        expect(listed.find((e) => e.type === "hardlink")).toMatchObject({ path: "src/main-copy.c", linkname: "src/main.c" })

        const extractors: Array<[string, ReadonlyArray<string>]> = [["tar", []]]
        if (hasBusybox) extractors.push([BUSYBOX, ["tar"]])
        for (const [command, prefix] of extractors) {
          const out = Fs.mkdtempSync(Path.join(box, "out-"))
          execFileSync(command, [...prefix, "-x", "-f", "-", "-C", out], { input: bytes })
          expect(Fs.readFileSync(Path.join(out, "lib/main"), "utf8")).toBe("int main(void) { return 0; }\n")
          expect(Fs.statSync(Path.join(out, "src/main-copy.c")).ino).toBe(Fs.statSync(Path.join(out, "src/main.c")).ino)
          expect(Fs.statSync(Path.join(out, "run.sh")).mode & 0o777).toBe(0o755)
          expect(Fs.readlinkSync(Path.join(out, "lib/current"))).toBe("../src")
          expect(Fs.readlinkSync(Path.join(out, "dangling"))).toBe("does/not/exist")
          expect(Fs.readFileSync(Path.join(out, LONG_DIR, LONG_FILE), "utf8")).toBe("deep\n")
          expect(Fs.readFileSync(Path.join(out, "long-link"), "utf8")).toBe("deep\n")
          expect(Fs.readFileSync(Path.join(out, "ünïcødé.txt"), "utf8")).toBe("ü\n")
          expect(Fs.readdirSync(out).sort()).toEqual([LONG_DIR, "dangling", "lib", "long-link", "run.sh", "src", "ünïcødé.txt"].sort())
        }
      }
    }))

  it.effect("an archive source may also be a symlink to the archive", () =>
    Effect.gen(function*() {
      const box = scratch("linked")
      Fs.writeFileSync(Path.join(box, "real.tar"), rawArchive([file("a.txt", "a")]))
      Fs.symlinkSync("real.tar", Path.join(box, "latest.tar"))
      expect(yield* inspectImportSource(Path.join(box, "latest.tar"))).toMatchObject({ kind: "archive", files: 1, bytes: 1 })
    }))

  it.effect("a truncated tar is a source error, not an unsafe entry", () =>
    Effect.gen(function*() {
      const box = scratch("cut")
      const raw = rawArchive([file("a.txt", "a".repeat(5000))])
      const archive = Path.join(box, "cut.tar")
      Fs.writeFileSync(archive, raw.subarray(0, 2048))
      const error = yield* Effect.flip(inspectImportSource(archive))
      expect(error).toBeInstanceOf(ImportSourceError)
      expect(error.message).toMatch(/not a valid tar archive \(corrupt, truncated or unsupported\): unexpected end of archive/)
    }))
})

// ---------------------------------------------------------------------------

const input = (path: string, type: EntryInput["type"], extra: Partial<EntryInput> = {}): EntryInput => ({
  path,
  type,
  mode: type === "directory" ? 0o755 : 0o644,
  size: 0,
  mtime: 1_700_000_000.75,
  linkname: "",
  ...extra
})

describe("path policy (src/archive/policy.ts)", () => {
  it("normalises names and skips the root", () => {
    const policy = makeEntryPolicy()
    expect(policy.check(input(".", "directory"))._tag).toBe("Skip")
    expect(policy.check(input("./", "directory"))._tag).toBe("Skip")
    expect(policy.check(input("./a//b/./c/", "directory"))).toEqual({
      _tag: "Accept",
      entry: { path: "a/b/c", type: "directory", mode: 0o755, size: 0, mtime: 1_700_000_000, linkname: "" },
      neutralised: false
    })
    expect(policy.check(input(".", "file"))).toMatchObject({ _tag: "Refuse" })
  })

  it("refuses long components and empty names", () => {
    expect(makeEntryPolicy().check(input(`a/${"x".repeat(256)}`, "file"))).toMatchObject({
      _tag: "Refuse",
      reason: expect.stringMatching(/component longer than 255/)
    })
    expect(makeEntryPolicy().check(input("", "file"))).toMatchObject({ _tag: "Refuse", reason: expect.stringMatching(/empty/) })
    expect(makeEntryPolicy().check(input("l", "symlink", { linkname: "" }))).toMatchObject({ _tag: "Refuse" })
  })

  it("follows chains of symlinks in either order", () => {
    const policy = makeEntryPolicy()
    expect(policy.check(input("a", "symlink", { linkname: "b/c/d" }))._tag).toBe("Accept")
    expect(policy.check(input("b", "symlink", { linkname: "x/y" }))._tag).toBe("Accept") // a -> x/y/c/d: inside
    expect(policy.check(input("x", "symlink", { linkname: "." }))._tag).toBe("Accept") // a -> y/c/d: inside
    expect(policy.check(input("y", "symlink", { linkname: ".." }))).toMatchObject({ _tag: "Refuse" }) // y itself escapes
    const escaping = makeEntryPolicy()
    expect(escaping.check(input("deep/er/l", "symlink", { linkname: "../../m/../../.." }))).toMatchObject({ _tag: "Refuse" })
    const later = makeEntryPolicy()
    // deep/er/k -> m/../../.. lands on the root while m is a directory...
    expect(later.check(input("deep/er/k", "symlink", { linkname: "m/../../.." }))._tag).toBe("Accept")
    // ...but once m -> . it lands on the root's parent: the innocent-looking m is refused.
    expect(later.check(input("deep/er/m", "symlink", { linkname: "." }))).toMatchObject({
      _tag: "Refuse",
      reason: expect.stringMatching(/earlier symlink "deep\/er\/k"/)
    })
    const dangling = makeEntryPolicy()
    expect(dangling.check(input("deep/er/m", "symlink", { linkname: "../../r/s/t" }))._tag).toBe("Accept")
    expect(dangling.check(input("deep/er/k", "symlink", { linkname: "m/../.." }))._tag).toBe("Accept") // r/s: inside
  })

  it("bounds depth, entries and content bytes when given limits (none by default)", () => {
    const deep = `${"d/".repeat(300)}f`
    expect(makeEntryPolicy().check(input(deep, "file"))._tag).toBe("Accept")
    const limits = { maxEntries: 2, maxBytes: 10, maxDepth: 3 }
    expect(makeEntryPolicy(limits).check(input("a/b/c/d", "file"))).toMatchObject({
      _tag: "Refuse",
      reason: expect.stringMatching(/nested 4 deep, more than the 3 allowed/)
    })
    const counted = makeEntryPolicy(limits)
    expect(counted.check(input(".", "directory"))._tag).toBe("Skip") // the root is not counted
    expect(counted.check(input("a", "file", { size: 6 }))._tag).toBe("Accept")
    expect(counted.check(input("b", "file", { size: 5 }))).toMatchObject({
      _tag: "Refuse",
      reason: expect.stringMatching(/content to 11 bytes, more than the 10 allowed/)
    })
    const many = makeEntryPolicy(limits)
    expect(many.check(input("a", "directory"))._tag).toBe("Accept")
    expect(many.check(input("a/b", "symlink", { linkname: "." }))._tag).toBe("Accept")
    expect(many.check(input("c", "file"))).toMatchObject({ _tag: "Refuse", reason: expect.stringMatching(/one entry more than the 2/) })
  })

  it("clears setuid and setgid, keeps the sticky bit, and drops fractional seconds", () => {
    const policy = makeEntryPolicy()
    expect(policy.check(input("tmp", "directory", { mode: 0o1777 }))).toMatchObject({ entry: { mode: 0o1777 }, neutralised: false })
    expect(policy.check(input("su", "file", { mode: 0o6755, size: 3 }))).toMatchObject({
      entry: { mode: 0o755, size: 3, mtime: 1_700_000_000 },
      neutralised: true
    })
  })
})

describe("tar writer", () => {
  const read = (bytes: Uint8Array) =>
    Effect.gen(function*() {
      const entries: Array<TarEntry> = []
      const error = yield* readTar(Stream.make(bytes), "written", (entry) => Effect.sync(() => void entries.push(entry))).pipe(
        Effect.flip,
        Effect.option
      )
      return { entries, error }
    })

  it.effect("names of every length, long link targets, root ownership", () =>
    Effect.gen(function*() {
      const short = "dir/file.txt"
      const splittable = `${"p".repeat(120)}/${"n".repeat(90)}` // prefix + name
      const unsplittable = `${"q".repeat(50)}/${"r".repeat(120)}` // last component too long for ustar: pax
      const veryLong = `${"seg/".repeat(200)}end` // 803 bytes
      const target = `${"t/".repeat(80)}x` // 161 bytes
      const archive = Buffer.concat([
        tarEntry({ path: "dir", type: "directory", mode: 0o755, size: 0, mtime: 1, linkname: "" }),
        ...[short, splittable, unsplittable, veryLong].map((path, i) =>
          tarEntry({ path, type: "file", mode: 0o640, size: 0, mtime: 1_600_000_000 + i, linkname: "" }, Buffer.from(path))
        ),
        tarEntry({ path: "link", type: "symlink", mode: 0o777, size: 0, mtime: 5, linkname: target }),
        tarEntry({ path: "hard", type: "hardlink", mode: 0o640, size: 0, mtime: 5, linkname: short }),
        tarEnd()
      ])
      expect(archive.length % 512).toBe(0)
      const { entries, error } = yield* read(archive)
      expect(error._tag).toBe("None")
      expect(entries.map((e) => e.path)).toEqual(["dir/", short, splittable, unsplittable, veryLong, "link", "hard"])
      expect(entries.every((e) => e.uid === 0 && e.gid === 0)).toBe(true)
      expect(entries[4]).toMatchObject({ type: "file", mode: 0o640, size: veryLong.length, mtime: 1_600_000_003 })
      expect(entries[5]).toMatchObject({ type: "symlink", linkname: target })
      expect(entries[6]).toMatchObject({ type: "hardlink", linkname: short, size: 0 })

      const gnu = execFileSync("tar", ["-t", "-v", "-f", "-"], { input: archive, encoding: "utf8" })
      expect(gnu).toContain(veryLong)
      expect(gnu).toContain(`link -> ${target}`)
      expect(gnu).toMatch(/root\/root/)
      if (hasBusybox) {
        const bb = execFileSync(BUSYBOX, ["tar", "-t", "-f", "-"], { input: archive, encoding: "utf8" })
        expect(bb.trim().split("\n")).toEqual(["dir/", short, splittable, unsplittable, veryLong, "link", "hard"])
      }
    }))

  it.effect("sizes and mtimes beyond octal fields go in pax and base-256", () =>
    Effect.gen(function*() {
      const size = 9 * 1024 ** 3 + 5
      const mtime = 8 ** 11 + 12
      const header = tarHeader({ path: "huge.img", type: "file", mode: 0o600, size, mtime, linkname: "" })
      expect(header.length).toBe(3 * 512) // pax header, pax data, ustar header
      const ustar = header.subarray(1024)
      expect(ustar[124]).toBe(0x80) // base-256 size
      expect(ustar[136]).toBe(0x80) // base-256 mtime
      const { entries, error } = yield* read(header) // content is missing: the reader reports it after the entry
      expect(entries).toEqual([
        { path: "huge.img", type: "file", mode: 0o600, uid: 0, gid: 0, size, mtime, linkname: "" }
      ])
      expect(error._tag).toBe("Some")
      // The ustar fields alone (a reader ignoring pax) say the same.
      const alone = yield* read(ustar)
      expect(alone.entries[0]).toMatchObject({ size, mtime })
    }))
})
