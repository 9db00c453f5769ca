/**
 * Applying image layers, in order, into one directory tree.
 *
 * Whiteouts: `.wh.NAME` removes NAME as lower layers left it; `.wh..wh..opq`
 * makes its directory opaque (everything lower layers put in it goes; what
 * the same layer puts there stays, in whatever order the tar lists it).
 *
 * Safety: a leading `/` is stripped (tars often store absolute names), a `..`
 * component is refused, and so is any entry whose parent path goes through a
 * symbolic link — nothing is ever written, linked or removed through a link,
 * so a layer cannot reach outside the tree. Hard links must point at a
 * non-directory already in the tree. Device nodes and fifos are skipped and
 * reported. Files are streamed to disk; modes (setuid included), mtimes and
 * symlinks are kept, ownership only when running as root.
 */
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as FsP from "node:fs/promises"
import * as Path from "node:path"
import * as NodeStreamLib from "node:stream"
import * as Zlib from "node:zlib"
import type { InvalidTar } from "../archive/errors.js"
import { readTar, type TarEntry, type TarEntryBody } from "../archive/read.js"
import { InvalidArchive, type OciIoError, UnsafeArchiveEntry, UnsupportedMediaType } from "./errors.js"
import { io, lstatIfExists, writeAll } from "./io.js"
import { layerCompression } from "./mediaTypes.js"

export interface LayerSource {
  /** A tar, tar+gzip (or tar+zstd where Node supports it) file. */
  readonly path: string
  readonly mediaType: string
  /** Names the layer in errors and in skipped entries (a digest); default: the file name. */
  readonly label?: string
}

export interface SkippedEntry {
  readonly layer: string
  readonly path: string
  readonly type: "character-device" | "block-device" | "fifo"
}

export interface FlattenResult {
  readonly skipped: ReadonlyArray<SkippedEntry>
}

export type FlattenError = UnsafeArchiveEntry | InvalidArchive | UnsupportedMediaType | OciIoError

const WHITEOUT = ".wh."
const OPAQUE = ".wh..wh..opq"

interface DirMeta {
  readonly mode: number
  readonly mtime: number
  readonly uid: number
  readonly gid: number
}

interface Extraction {
  readonly dest: string
  readonly asRoot: boolean
  /** Directories with the metadata their last entry gave, applied once all layers are in. */
  readonly dirs: Map<string, DirMeta>
  /** Relative paths known to be real directories (not links); cleared whenever something is removed. */
  readonly knownDirs: Set<string>
  readonly skipped: Array<SkippedEntry>
}

type ZstdFactory = () => NodeStreamLib.Transform
const zstdDecompress = (Zlib as unknown as { readonly createZstdDecompress?: ZstdFactory }).createZstdDecompress

const sniff = (path: string) =>
  io("read", path, async () => {
    const handle = await FsP.open(path, "r")
    try {
      const magic = new Uint8Array(4)
      const { bytesRead } = await handle.read(magic, 0, 4, 0)
      return magic.subarray(0, bytesRead)
    } finally {
      await handle.close()
    }
  })

/** The layer's uncompressed tar bytes as a stream. The content decides the compression; the media type must be a layer's. */
const layerStream = (layer: LayerSource, label: string) =>
  Effect.gen(function*() {
    const declared = layerCompression(layer.mediaType)
    if (declared === undefined) {
      return yield* new UnsupportedMediaType({ reference: label, mediaType: layer.mediaType, detail: "not a tar layer" })
    }
    const magic = yield* sniff(layer.path)
    const gzip = magic[0] === 0x1f && magic[1] === 0x8b
    const zstd = magic[0] === 0x28 && magic[1] === 0xb5 && magic[2] === 0x2f && magic[3] === 0xfd
    if ((zstd || declared === "zstd") && !zstdDecompress) {
      return yield* new UnsupportedMediaType({
        reference: label,
        mediaType: layer.mediaType,
        detail: "zstd-compressed layers need a Node.js whose zlib supports zstd (22.15 or later)"
      })
    }
    const decompressor = gzip ? () => Zlib.createGunzip() : zstd && zstdDecompress ? zstdDecompress : undefined
    const stream: Stream.Stream<Uint8Array, InvalidArchive> = NodeStream.fromReadable(
      () => {
        const file = Fs.createReadStream(layer.path)
        return decompressor ? NodeStreamLib.pipeline(file, decompressor(), () => undefined) : file
      },
      (error) =>
        new InvalidArchive({
          layer: label,
          detail: `cannot read the layer: ${error instanceof Error ? error.message : String(error)}`
        })
    )
    return stream
  })

/** Path components of an entry name, or the reason it is unsafe. */
const splitName = (name: string): ReadonlyArray<string> | string => {
  const parts = name.split("/").filter((p) => p !== "" && p !== ".")
  if (parts.includes("..")) return "the name contains a \"..\" component"
  return parts
}

const depth = (rel: string) => rel.split("/").length

const applyLayer = (x: Extraction, layer: LayerSource, label: string) =>
  Effect.gen(function*() {
    /** What this layer has put in place so far: whiteouts and opaque markers leave these alone. */
    const written = new Set<string>()
    const unsafe = (entry: string, reason: string) => new UnsafeArchiveEntry({ layer: label, entry, reason })
    const abs = (rel: string) => Path.join(x.dest, rel)

    const forgetUnder = (rel: string) => {
      x.knownDirs.clear()
      for (const key of x.dirs.keys()) if (key === rel || key.startsWith(`${rel}/`)) x.dirs.delete(key)
    }

    /** Remove whatever is at `rel` (never following a link). */
    const remove = (rel: string, stat: Fs.Stats) =>
      stat.isDirectory()
        ? io("remove", abs(rel), () => FsP.rm(abs(rel), { recursive: true, force: true })).pipe(
          Effect.tap(() => forgetUnder(rel))
        )
        : io("remove", abs(rel), () => FsP.unlink(abs(rel)))

    /**
     * Make every parent of `parts` a real directory, refusing to go through a
     * symbolic link. With `create` false, only check: false if one is missing.
     */
    const ensureParents = (entry: string, parts: ReadonlyArray<string>, create = true) =>
      Effect.gen(function*() {
        for (let i = 1; i < parts.length; i++) {
          const rel = parts.slice(0, i).join("/")
          if (x.knownDirs.has(rel)) continue
          const stat = yield* lstatIfExists(abs(rel))
          if (stat?.isSymbolicLink()) {
            return yield* unsafe(entry, `its parent "${rel}" is a symbolic link (writing through it could leave the tree)`)
          }
          if (!create && !stat?.isDirectory()) return false
          if (stat && !stat.isDirectory()) yield* remove(rel, stat)
          if (!stat || !stat.isDirectory()) {
            yield* io("mkdir", abs(rel), () => FsP.mkdir(abs(rel), { mode: 0o755 }))
            written.add(rel)
          }
          x.knownDirs.add(rel)
        }
        return true
      })

    /** Clear the way for a non-directory at `rel`. */
    const replace = (rel: string) =>
      Effect.gen(function*() {
        const stat = yield* lstatIfExists(abs(rel))
        if (stat) yield* remove(rel, stat)
      })

    /** Remove everything under directory `rel` that this layer did not put there. */
    const removeLower = (rel: string): Effect.Effect<void, OciIoError> =>
      Effect.gen(function*() {
        const names = yield* io("readdir", abs(rel), () => FsP.readdir(abs(rel)))
        for (const name of names) {
          const child = rel === "" ? name : `${rel}/${name}`
          const stat = yield* lstatIfExists(abs(child))
          if (!stat) continue
          if (!written.has(child)) yield* remove(child, stat)
          else if (stat.isDirectory()) yield* removeLower(child)
        }
      })

    const whiteout = (entry: string, parts: ReadonlyArray<string>, name: string) =>
      Effect.gen(function*() {
        if (!(yield* ensureParents(entry, parts, false))) return // nothing below to hide
        const parent = parts.slice(0, -1).join("/")
        if (name === OPAQUE) return yield* removeLower(parent)
        if (name.startsWith(`${WHITEOUT}${WHITEOUT}`)) return // other AUFS metadata (.wh..wh.plnk, ...)
        const target = name.slice(WHITEOUT.length)
        if (target === "" || target === "." || target === "..") return yield* unsafe(entry, "whiteout of an invalid name")
        const rel = parent === "" ? target : `${parent}/${target}`
        if (written.has(rel)) return
        const stat = yield* lstatIfExists(abs(rel))
        if (stat) yield* remove(rel, stat)
      })

    const writeFile = <SE, SR>(entry: TarEntry, rel: string, body: TarEntryBody<SE, SR>) =>
      Effect.acquireUseRelease(
        io("create", abs(rel), () =>
          FsP.open(abs(rel), Fs.constants.O_WRONLY | Fs.constants.O_CREAT | Fs.constants.O_EXCL | Fs.constants.O_NOFOLLOW, 0o600)),
        (handle) =>
          Effect.gen(function*() {
            yield* body.forEachChunk((chunk) => writeAll(handle, abs(rel), chunk))
            if (x.asRoot) yield* io("chown", abs(rel), () => handle.chown(entry.uid, entry.gid))
            // After chown, which clears setuid/setgid.
            yield* io("chmod", abs(rel), () => handle.chmod(entry.mode))
            yield* io("utimes", abs(rel), () => handle.utimes(entry.mtime, entry.mtime))
          }),
        (handle) => Effect.promise(() => handle.close().catch(() => undefined))
      )

    const hardlink = (entry: TarEntry, rel: string, parts: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const targetParts = splitName(entry.linkname)
        if (typeof targetParts === "string") return yield* unsafe(entry.path, `hard link target "${entry.linkname}": ${targetParts}`)
        if (targetParts.length === 0) return yield* unsafe(entry.path, "hard link to the root directory")
        for (let i = 1; i < targetParts.length; i++) {
          const prefix = targetParts.slice(0, i).join("/")
          const stat = yield* lstatIfExists(abs(prefix))
          if (stat?.isSymbolicLink()) {
            return yield* unsafe(entry.path, `hard link target "${entry.linkname}" goes through the symbolic link "${prefix}"`)
          }
          if (!stat?.isDirectory()) break
        }
        const target = targetParts.join("/")
        const stat = yield* lstatIfExists(abs(target))
        if (!stat) {
          return yield* new InvalidArchive({ layer: label, detail: `hard link "${entry.path}" points at "${entry.linkname}", which does not exist` })
        }
        if (stat.isDirectory()) return yield* unsafe(entry.path, `hard link to the directory "${entry.linkname}"`)
        written.add(rel)
        if (target === rel) return
        yield* ensureParents(entry.path, parts)
        yield* replace(rel)
        yield* io("link", abs(rel), () => FsP.link(abs(target), abs(rel)))
      })

    const apply = <SE, SR>(entry: TarEntry, body: TarEntryBody<SE, SR>) =>
      Effect.gen(function*() {
        const parts = splitName(entry.path)
        if (typeof parts === "string") return yield* unsafe(entry.path, parts)
        if (parts.length === 0) {
          if (entry.type === "directory") return // the root itself: the caller's directory keeps its metadata
          return yield* unsafe(entry.path, `a ${entry.type} with an empty name`)
        }
        const name = parts[parts.length - 1]!
        const rel = parts.join("/")
        if (name.startsWith(WHITEOUT)) return yield* whiteout(entry.path, parts, name)

        switch (entry.type) {
          case "character-device":
          case "block-device":
          case "fifo":
            // Not created (an unprivileged host cannot, and the guest makes its own); its directory is.
            yield* ensureParents(entry.path, parts)
            x.skipped.push({ layer: label, path: rel, type: entry.type })
            return
          case "hardlink":
            return yield* hardlink(entry, rel, parts)
          case "directory": {
            yield* ensureParents(entry.path, parts)
            const stat = yield* lstatIfExists(abs(rel))
            if (stat && !stat.isDirectory()) yield* remove(rel, stat)
            if (!stat || !stat.isDirectory()) {
              yield* io("mkdir", abs(rel), () => FsP.mkdir(abs(rel), { mode: 0o700 }))
            } else if ((stat.mode & 0o700) !== 0o700) {
              // Keep it writable while layers go in; the final mode is set at the end.
              yield* io("chmod", abs(rel), () => FsP.chmod(abs(rel), (stat.mode & 0o7777) | 0o700))
            }
            x.dirs.set(rel, { mode: entry.mode, mtime: entry.mtime, uid: entry.uid, gid: entry.gid })
            x.knownDirs.add(rel)
            written.add(rel)
            return
          }
          case "symlink": {
            yield* ensureParents(entry.path, parts)
            yield* replace(rel)
            yield* io("symlink", abs(rel), () => FsP.symlink(entry.linkname, abs(rel)))
            if (x.asRoot) yield* io("lchown", abs(rel), () => FsP.lchown(abs(rel), entry.uid, entry.gid))
            yield* io("lutimes", abs(rel), () => FsP.lutimes(abs(rel), entry.mtime, entry.mtime))
            written.add(rel)
            return
          }
          case "file": {
            yield* ensureParents(entry.path, parts)
            yield* replace(rel)
            yield* writeFile(entry, rel, body)
            written.add(rel)
            return
          }
        }
      })

    const source = yield* layerStream(layer, label)
    yield* readTar(source, label, apply).pipe(
      Effect.catchTag("InvalidTar", (error: InvalidTar) =>
        Effect.fail(new InvalidArchive({ layer: error.archive, detail: error.detail })))
    )
  })

/**
 * Apply `layers` in order into `dest` (created if missing). Returns the
 * entries that were skipped (device nodes, fifos).
 */
export const flattenLayers = (
  layers: ReadonlyArray<LayerSource>,
  dest: string
): Effect.Effect<FlattenResult, FlattenError> =>
  Effect.gen(function*() {
    yield* io("mkdir", dest, () => FsP.mkdir(dest, { recursive: true }))
    const x: Extraction = {
      dest,
      asRoot: process.getuid?.() === 0,
      dirs: new Map(),
      knownDirs: new Set(),
      skipped: []
    }
    for (const layer of layers) {
      yield* applyLayer(x, layer, layer.label ?? Path.basename(layer.path))
    }
    // Deepest first, so a directory made read-only does not stop its children being finished.
    const dirs = [...x.dirs.entries()].sort(([a], [b]) => depth(b) - depth(a))
    for (const [rel, meta] of dirs) {
      const path = Path.join(dest, rel)
      const stat = yield* lstatIfExists(path)
      if (!stat?.isDirectory()) continue
      if (x.asRoot) yield* io("chown", path, () => FsP.lchown(path, meta.uid, meta.gid))
      yield* io("chmod", path, () => FsP.chmod(path, meta.mode))
      yield* io("utimes", path, () => FsP.utimes(path, meta.mtime, meta.mtime))
    }
    return { skipped: x.skipped }
  })
