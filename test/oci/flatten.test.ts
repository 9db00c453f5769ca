import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Zlib from "node:zlib"
import { flattenLayers, type LayerSource } from "../../src/oci/flatten.js"
import { OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD } from "../../src/oci/mediaTypes.js"
import { tarArchive, tarGz, type TarSpec } from "./tarWriter.js"
import { describeTree } from "./tree.js"

const scratchDirs: Array<string> = []
const scratch = () => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-flatten-"))
  scratchDirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of scratchDirs) {
    execFileSync("chmod", ["-R", "u+rwx", dir])
    Fs.rmSync(dir, { recursive: true, force: true })
  }
})

/** Write each spec list as a gzip layer file; returns their sources. */
const layerFiles = (dir: string, layers: ReadonlyArray<ReadonlyArray<TarSpec>>): Array<LayerSource> =>
  layers.map((entries, i) => {
    const path = Path.join(dir, `layer${i}.tar.gz`)
    Fs.writeFileSync(path, tarGz(entries))
    return { path, mediaType: OCI_LAYER_GZIP, label: `layer${i}` }
  })

const flatten = (layers: ReadonlyArray<LayerSource>, dest: string) => Effect.runPromise(Effect.either(flattenLayers(layers, dest)))

describe("flattenLayers", () => {
  it("applies layers in order with whiteouts, opaque directories, links and modes", async () => {
    const dir = scratch()
    const layers = layerFiles(dir, [
      [
        { type: "dir", path: "etc/", mode: 0o755 },
        { type: "file", path: "etc/passwd", data: "root:x:0:0\n" },
        { type: "file", path: "etc/hosts", data: "127.0.0.1 localhost\n" },
        { type: "dir", path: "bin/" },
        { type: "file", path: "bin/sh", data: "old shell", mode: 0o755 },
        { type: "hardlink", path: "bin/sh-hard", target: "bin/sh" },
        { type: "file", path: "usr/bin/su", data: "su", mode: 0o4755 },
        { type: "symlink", path: "etc/motd", target: "/run/motd" },
        { type: "dir", path: "opt/app/" },
        { type: "file", path: "opt/app/old.txt", data: "old" },
        { type: "dir", path: "opt/app/sub/" },
        { type: "file", path: "opt/app/sub/deep.txt", data: "deep" },
        { type: "dir", path: "var/cache/", mode: 0o700 },
        { type: "file", path: "var/cache/junk", data: "junk" },
        { type: "file", path: "/abs/path.txt", data: "leading slash stripped" },
        { type: "fifo", path: "run/initctl" }
      ],
      [
        { type: "file", path: "etc/.wh.hosts" },
        // The layer's own file listed before its opaque marker must survive it.
        { type: "file", path: "opt/app/new.txt", data: "new" },
        { type: "file", path: "opt/app/.wh..wh..opq" },
        { type: "dir", path: "opt/app/sub/" },
        { type: "file", path: "bin/sh", data: "new shell", mode: 0o755 },
        { type: "dir", path: "ro/", mode: 0o555, mtime: 1_500_000_000 },
        { type: "file", path: "ro/file", data: "in a read-only dir", mode: 0o444 }
      ],
      [
        { type: "file", path: "var/.wh.cache" },
        { type: "file", path: "etc/passwd", data: "root:x:0:0\npyro:x:1000:1000\n", mtime: 1_234_567_890 },
        { type: "dir", path: "etc/hosts/" }
      ]
    ])
    const dest = Path.join(dir, "rootfs")
    const result = await flatten(layers, dest)
    expect(Either.isRight(result)).toBe(true)
    expect(Either.getOrThrow(result).skipped).toEqual([{ layer: "layer0", path: "run/initctl", type: "fifo" }])
    expect(describeTree(dest)).toEqual([
      "abs/ 755",
      "abs/path.txt 644 \"leading slash stripped\"",
      "bin/ 755",
      "bin/sh 755 \"new shell\"",
      "bin/sh-hard 755 \"old shell\"",
      "etc/ 755",
      "etc/hosts/ 755",
      "etc/motd -> /run/motd",
      "etc/passwd 644 \"root:x:0:0\\npyro:x:1000:1000\\n\"",
      "opt/ 755",
      "opt/app/ 755",
      "opt/app/new.txt 644 \"new\"",
      "opt/app/sub/ 755",
      "ro/ 555",
      "ro/file 444 \"in a read-only dir\"",
      "run/ 755",
      "usr/ 755",
      "usr/bin/ 755",
      "usr/bin/su 4755 \"su\"",
      "var/ 755"
    ])
    expect(Fs.statSync(Path.join(dest, "etc/passwd")).mtimeMs).toBe(1_234_567_890_000)
    expect(Fs.statSync(Path.join(dest, "ro")).mtimeMs).toBe(1_500_000_000_000)
    expect(Fs.lstatSync(Path.join(dest, "etc/motd")).mtimeMs).toBe(1_700_000_000_000)
  })

  it("keeps hard links of a layer's own files", async () => {
    const dir = scratch()
    const dest = Path.join(dir, "rootfs")
    const result = await flatten(layerFiles(dir, [[
      { type: "file", path: "a", data: "x" },
      { type: "hardlink", path: "b", target: "./a" }
    ]]), dest)
    expect(Either.isRight(result)).toBe(true)
    expect(Fs.statSync(Path.join(dest, "a")).ino).toBe(Fs.statSync(Path.join(dest, "b")).ino)
  })

  it("sets ownership from the entry only when running as root", async () => {
    const dir = scratch()
    const dest = Path.join(dir, "rootfs")
    const result = await flatten(layerFiles(dir, [[{ type: "file", path: "owned", data: "x", uid: 1234, gid: 5678, mode: 0o2755 }]]), dest)
    expect(Either.isRight(result)).toBe(true)
    const stat = Fs.statSync(Path.join(dest, "owned"))
    if (process.getuid?.() === 0) {
      expect([stat.uid, stat.gid]).toEqual([1234, 5678])
      expect(stat.mode & 0o7777).toBe(0o2755) // set after chown, which clears it
    } else {
      expect(stat.uid).toBe(process.getuid?.())
    }
  })

  const refused = async (entries: ReadonlyArray<TarSpec>, lower: ReadonlyArray<TarSpec> = []) => {
    const dir = scratch()
    const outside = Path.join(dir, "outside")
    Fs.mkdirSync(outside)
    const dest = Path.join(dir, "tree", "rootfs")
    const specs = lower.length > 0 ? [lower, entries] : [entries]
    const result = await flatten(layerFiles(dir, specs), dest)
    const outsideAfter = Fs.readdirSync(outside)
    const escaped = Fs.readdirSync(Path.join(dir, "tree")).filter((n) => n !== "rootfs")
    expect(outsideAfter).toEqual([])
    expect(escaped).toEqual([])
    if (Either.isRight(result)) throw new Error("the layer was applied")
    return result.left
  }

  it("refuses .. components", async () => {
    const error = await refused([{ type: "file", path: "../escape", data: "x" }])
    expect(error._tag).toBe("UnsafeArchiveEntry")
    expect(error.message).toContain("\"../escape\"")
    expect(error.message).toContain("..")
    expect((await refused([{ type: "file", path: "a/../../escape", data: "x" }]))._tag).toBe("UnsafeArchiveEntry")
    expect((await refused([{ type: "file", path: "a", data: "x" }, { type: "hardlink", path: "b", target: "../a" }]))._tag)
      .toBe("UnsafeArchiveEntry")
  })

  it("refuses to write through a symlink, in the same layer or from a lower one", async () => {
    const sameLayer = await refused([
      { type: "symlink", path: "link", target: "../../outside" },
      { type: "file", path: "link/evil", data: "x" }
    ])
    expect(sameLayer._tag).toBe("UnsafeArchiveEntry")
    expect(sameLayer.message).toContain("link/evil")
    expect(sameLayer.message).toContain("symbolic link")
    const lower = await refused(
      [{ type: "file", path: "etc/evil", data: "x" }],
      [{ type: "symlink", path: "etc", target: "../../outside" }]
    )
    expect(lower._tag).toBe("UnsafeArchiveEntry")
    // A whiteout must not delete through a link either.
    const whiteout = await refused(
      [{ type: "file", path: "etc/.wh.victim" }],
      [{ type: "symlink", path: "etc", target: "../../outside" }]
    )
    expect(whiteout._tag).toBe("UnsafeArchiveEntry")
  })

  it("refuses a hard link to a directory and reports a dangling one", async () => {
    expect((await refused([{ type: "dir", path: "d/" }, { type: "hardlink", path: "l", target: "d" }]))._tag).toBe("UnsafeArchiveEntry")
    expect((await refused([{ type: "hardlink", path: "l", target: "missing" }]))._tag).toBe("InvalidArchive")
  })

  it("replaces a symlink with a file instead of writing through it", async () => {
    const dir = scratch()
    const target = Path.join(dir, "victim")
    Fs.writeFileSync(target, "untouched")
    const dest = Path.join(dir, "rootfs")
    const result = await flatten(layerFiles(dir, [
      [{ type: "symlink", path: "f", target }],
      [{ type: "file", path: "f", data: "replaced" }]
    ]), dest)
    expect(Either.isRight(result)).toBe(true)
    expect(Fs.readFileSync(target, "utf8")).toBe("untouched")
    expect(Fs.readFileSync(Path.join(dest, "f"), "utf8")).toBe("replaced")
  })

  it("reads what GNU tar writes (gnu and posix formats, long names, uncompressed and gzip)", async () => {
    const dir = scratch()
    const src = Path.join(dir, "src")
    const longDir = `${"d".repeat(80)}/${"e".repeat(80)}`
    Fs.mkdirSync(Path.join(src, longDir), { recursive: true })
    Fs.writeFileSync(Path.join(src, longDir, `${"f".repeat(120)}.txt`), "long name")
    Fs.writeFileSync(Path.join(src, "big.bin"), Buffer.alloc(3 * 1024 * 1024 + 17, 7))
    Fs.symlinkSync(`${"t".repeat(150)}`, Path.join(src, "long-link"))
    Fs.linkSync(Path.join(src, "big.bin"), Path.join(src, "big-hard.bin"))
    Fs.chmodSync(Path.join(src, "big.bin"), 0o600)
    for (const format of ["gnu", "posix"]) {
      const tarPath = Path.join(dir, `${format}.tar`)
      execFileSync("tar", [`--format=${format}`, "-cf", tarPath, "-C", src, "."])
      const gzPath = `${tarPath}.gz`
      Fs.writeFileSync(gzPath, Zlib.gzipSync(Fs.readFileSync(tarPath)))
      for (const layer of [{ path: tarPath, mediaType: OCI_LAYER_TAR }, { path: gzPath, mediaType: OCI_LAYER_GZIP }]) {
        const dest = Path.join(dir, `out-${Path.basename(layer.path)}`)
        const result = await flatten([layer], dest)
        expect(Either.isRight(result)).toBe(true)
        expect(describeTree(dest).filter((l) => !l.startsWith("big"))).toEqual(describeTree(src).filter((l) => !l.startsWith("big")))
        expect(Fs.readFileSync(Path.join(dest, "big.bin")).equals(Fs.readFileSync(Path.join(src, "big.bin")))).toBe(true)
        expect(Fs.statSync(Path.join(dest, "big.bin")).ino).toBe(Fs.statSync(Path.join(dest, "big-hard.bin")).ino)
        expect(Fs.statSync(Path.join(dest, "big.bin")).mode & 0o777).toBe(0o600)
      }
    }
  })

  it("rejects zstd layers clearly, and garbage as an invalid archive", async () => {
    const dir = scratch()
    const zstd = Path.join(dir, "layer.tar.zst")
    Fs.writeFileSync(zstd, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]))
    const z = await flatten([{ path: zstd, mediaType: OCI_LAYER_ZSTD }], Path.join(dir, "a"))
    if (Either.isRight(z)) throw new Error("zstd applied")
    expect(z.left._tag).toBe("UnsupportedMediaType")
    expect(z.left.message).toContain("zstd")

    const garbage = Path.join(dir, "garbage.tar")
    Fs.writeFileSync(garbage, Buffer.alloc(1024, 0x41))
    const g = await flatten([{ path: garbage, mediaType: OCI_LAYER_TAR }], Path.join(dir, "b"))
    if (Either.isRight(g)) throw new Error("garbage applied")
    expect(g.left._tag).toBe("InvalidArchive")
    expect(g.left.message).toContain("checksum")

    const truncated = Path.join(dir, "truncated.tar")
    Fs.writeFileSync(truncated, tarArchive([{ type: "file", path: "f", data: "x".repeat(2000) }]).subarray(0, 1024))
    const t = await flatten([{ path: truncated, mediaType: OCI_LAYER_TAR }], Path.join(dir, "c"))
    if (Either.isRight(t)) throw new Error("truncated applied")
    expect(t.left.message).toContain("unexpected end of archive")

    const unknown = await flatten([{ path: garbage, mediaType: "application/vnd.example.thing" }], Path.join(dir, "d"))
    if (Either.isRight(unknown)) throw new Error("unknown applied")
    expect(unknown.left._tag).toBe("UnsupportedMediaType")
  })
})
