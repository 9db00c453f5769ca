/**
 * Reading and verifying installed environments. An install is a directory
 * holding the root image and, written last, its manifest; anything less is
 * unfinished and treated as absent.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { sha256File } from "../host/files.js"
import { decodeManifest, type EnvironmentManifest, encodeManifest, MANIFEST_FILE } from "./manifest.js"

export interface InstallDir {
  readonly dir: string
  readonly rootImage: string
  readonly manifest: EnvironmentManifest
}

/** Cheap check for every use: the manifest parses and the image has the recorded size. */
export const readInstall = (dir: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const manifest = yield* fs.readFileString(Path.join(dir, MANIFEST_FILE)).pipe(
      Effect.flatMap(decodeManifest),
      Effect.option
    )
    if (Option.isNone(manifest)) return undefined
    const rootImage = Path.join(dir, manifest.value.rootfs.file)
    const info = yield* fs.stat(rootImage).pipe(Effect.option)
    if (Option.isNone(info) || Number(info.value.size) !== manifest.value.rootfs.bytes) return undefined
    return { dir, rootImage, manifest: manifest.value } satisfies InstallDir
  })

/** The full check: the image's sha256 matches the manifest. */
export const verifyInstall = (install: InstallDir) =>
  Effect.map(
    sha256File(install.rootImage).pipe(Effect.orElseSucceed(() => "")),
    (digest) => digest === install.manifest.rootfs.sha256
  )

/** Record an image that is already in `dir` (the last step of an install). */
export const writeManifestFor = (
  dir: string,
  fields: Omit<EnvironmentManifest, "format" | "rootfs" | "built_at">,
  rootfsFile: string
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const image = Path.join(dir, rootfsFile)
    const bytes = Number((yield* fs.stat(image)).size)
    const manifest: EnvironmentManifest = {
      format: 1,
      ...fields,
      rootfs: { file: rootfsFile, sha256: yield* sha256File(image), bytes },
      built_at: new Date().toISOString()
    }
    yield* fs.writeFileString(Path.join(dir, MANIFEST_FILE), yield* encodeManifest(manifest))
    return manifest
  })

/** Bytes under a path, counting each symlink as itself (never following one). */
export const diskUsage = (path: string): Effect.Effect<number> =>
  Effect.sync(() => {
    const walk = (p: string): number => {
      let info: Fs.Stats
      try {
        info = Fs.lstatSync(p)
      } catch {
        return 0
      }
      if (!info.isDirectory()) return info.blocks * 512
      let total = info.blocks * 512
      for (const name of Fs.readdirSync(p)) total += walk(Path.join(p, name))
      return total
    }
    return walk(path)
  })
