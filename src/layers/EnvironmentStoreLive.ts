import * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import { captureServices } from "./captureServices.js"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { buildBusyboxTree } from "../environment/busybox.js"
import { CATALOG, cacheName, type CatalogEntry, findEntry } from "../environment/catalog.js"
import { makeRootImage } from "../environment/ext4.js"
import { decodeManifest, encodeManifest, MANIFEST_FILE, ROOTFS_FILE } from "../environment/manifest.js"
import { installDirectory, removeStalePartials, sha256File, withTempDir } from "../host/files.js"
import {
  EnvironmentBuildFailed,
  type EnvironmentInfo,
  EnvironmentNotFound,
  EnvironmentStore,
  type InstalledEnvironment
} from "../services/EnvironmentStore.js"
import { Progress, report } from "../services/Progress.js"
import { PyroConfig } from "../services/PyroConfig.js"

/** Room for what a build adds on top of the tree itself (ext4 metadata, slack). */
const imageSizeMib = (treeBytes: number) => Math.ceil((treeBytes * 1.25) / (1024 * 1024)) + 16

/** Bytes a tree occupies, counting each symlink as itself, not its target. */
const treeBytes = (root: string) =>
  Effect.sync(() => {
    let total = 0
    const walk = (dir: string) => {
      for (const entry of Fs.readdirSync(dir, { withFileTypes: true })) {
        const full = Path.join(dir, entry.name)
        total += Fs.lstatSync(full).size + 4096
        if (entry.isDirectory()) walk(full)
      }
    }
    walk(root)
    return total
  })

export const make = Effect.gen(function*() {
  const config = yield* PyroConfig
  const context = yield* captureServices(FileSystem.FileSystem, CommandExecutor.CommandExecutor, Progress)
  const fs = yield* FileSystem.FileSystem
  const root = Path.join(config.cacheDir, "environments")

  const entryDir = (entry: CatalogEntry) => Path.join(root, cacheName(entry.name), entry.version)

  const lookup = (name: string) =>
    Option.match(Option.fromNullable(findEntry(name)), {
      onNone: () => Effect.fail(new EnvironmentNotFound({ name, known: CATALOG.map((e) => e.name) })),
      onSome: Effect.succeed
    })

  /** Present and intact: the manifest parses and the image has the recorded size. */
  const readInstalled = (entry: CatalogEntry) =>
    Effect.gen(function*() {
      const dir = entryDir(entry)
      const manifest = yield* fs.readFileString(Path.join(dir, MANIFEST_FILE)).pipe(
        Effect.flatMap(decodeManifest),
        Effect.option
      )
      if (Option.isNone(manifest)) return undefined
      const rootImage = Path.join(dir, manifest.value.rootfs.file)
      const info = yield* fs.stat(rootImage).pipe(Effect.option)
      if (Option.isNone(info) || Number(info.value.size) !== manifest.value.rootfs.bytes) return undefined
      return { name: entry.name, version: entry.version, dir, rootImage, manifest: manifest.value } satisfies InstalledEnvironment
    })

  const build = (entry: CatalogEntry) =>
    Effect.gen(function*() {
      const target = entryDir(entry)
      yield* removeStalePartials(Path.dirname(target))
      // A broken install (say, an image truncated by a full disk) is replaced.
      if (yield* fs.exists(target)) yield* fs.remove(target, { recursive: true })
      yield* report({ scope: "pull", phase: "build", fields: { environment: entry.name } })
      yield* installDirectory(target, (dir) =>
        withTempDir(Path.dirname(target), "tree", (tree) =>
          Effect.gen(function*() {
            const packages = yield* buildBusyboxTree(tree, config.cacheDir)
            const image = Path.join(dir, ROOTFS_FILE)
            yield* report({ scope: "pull", phase: "image", fields: { environment: entry.name } })
            yield* makeRootImage({
              sourceDir: tree,
              image,
              label: `pyro-${cacheName(entry.name)}`,
              sizeMib: imageSizeMib(yield* treeBytes(tree)),
              seed: `${entry.name}@${entry.version}`
            })
            const bytes = Number((yield* fs.stat(image)).size)
            const manifest = yield* encodeManifest({
              name: entry.name,
              version: entry.version,
              rootfs: { file: ROOTFS_FILE, sha256: yield* sha256File(image), bytes },
              packages,
              source: `built locally (${entry.recipe.kind})`,
              builtAt: new Date().toISOString()
            })
            yield* fs.writeFileString(Path.join(dir, MANIFEST_FILE), manifest)
          })))
      yield* report({ scope: "pull", phase: "installed", fields: { environment: entry.name } })
      const installed = yield* readInstalled(entry)
      if (!installed) return yield* Effect.fail(new Error(`${target} is incomplete after install`))
      return installed
    }).pipe(
      Effect.mapError((e) =>
        new EnvironmentBuildFailed({ name: entry.name, detail: e instanceof Error ? e.message : String(e) })
      )
    )

  const locks = new Map<string, Effect.Semaphore>()
  const lockFor = (name: string) => {
    let lock = locks.get(name)
    if (!lock) locks.set(name, (lock = Effect.unsafeMakeSemaphore(1)))
    return lock
  }

  const ensure = (name: string) =>
    Effect.gen(function*() {
      const entry = yield* lookup(name)
      return yield* lockFor(name).withPermits(1)(
        Effect.flatMap(readInstalled(entry), (found) => (found ? Effect.succeed(found) : build(entry)))
      )
    }).pipe(Effect.provide(context), Effect.withSpan("EnvironmentStore.ensure", { attributes: { name } }))

  const installed = (name: string) =>
    Effect.flatMap(lookup(name), readInstalled).pipe(Effect.provide(context))

  const list = Effect.forEach(CATALOG, (entry) =>
    Effect.map(readInstalled(entry), (found): EnvironmentInfo => ({
      name: entry.name,
      version: entry.version,
      description: entry.description,
      default_packages: entry.default_packages,
      distribution: entry.distribution,
      distribution_version: entry.distribution_version,
      platform: entry.platform,
      installed: found !== undefined
    }))).pipe(Effect.provide(context))

  return EnvironmentStore.of({ list, ensure, installed })
})

export const EnvironmentStoreLive = Layer.effect(EnvironmentStore, make)
