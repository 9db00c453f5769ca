import * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Path from "node:path"
import { buildCatalogEnvironment } from "../environment/build.js"
import { CATALOG, cacheName, type CatalogEntry, findEntry } from "../environment/catalog.js"
import { diskUsage, type InstallDir, readInstall, verifyInstall } from "../environment/install.js"
import { installDirectory, removeStalePartials } from "../host/files.js"
import {
  EnvironmentBuildFailed,
  type EnvironmentInfo,
  EnvironmentNotFound,
  EnvironmentStore,
  type InspectResult,
  type InstalledEnvironment,
  type PruneResult,
  type PullResult
} from "../services/EnvironmentStore.js"
import { Progress, report } from "../services/Progress.js"
import { PyroConfig } from "../services/PyroConfig.js"
import { captureServices } from "./captureServices.js"

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e))

export const make = Effect.gen(function*() {
  const config = yield* PyroConfig
  const context = yield* captureServices(FileSystem.FileSystem, CommandExecutor.CommandExecutor, Progress)
  const fs = yield* FileSystem.FileSystem
  const root = Path.join(config.cacheDir, "environments")

  const entryDir = (entry: CatalogEntry) => Path.join(root, cacheName(entry.name), entry.version)

  const lookup = (name: string) => {
    const entry = findEntry(name)
    return entry ? Effect.succeed(entry) : Effect.fail(new EnvironmentNotFound({ name, known: CATALOG.map((e) => e.name) }))
  }

  const infoOf = (entry: CatalogEntry, installed: boolean): EnvironmentInfo => ({
    name: entry.name,
    version: entry.version,
    description: entry.description,
    default_packages: entry.default_packages,
    distribution: entry.distribution,
    distribution_version: entry.distribution_version,
    platform: entry.platform,
    installed
  })

  const asInstalled = (entry: CatalogEntry, install: InstallDir): InstalledEnvironment => ({
    name: entry.name,
    version: entry.version,
    dir: install.dir,
    rootImage: install.rootImage,
    manifest: install.manifest
  })

  /** Build aside and rename into place; whatever was at the target (a damaged install) is replaced. */
  const install = (entry: CatalogEntry) =>
    Effect.gen(function*() {
      const target = entryDir(entry)
      yield* removeStalePartials(Path.dirname(target))
      if (yield* fs.exists(target)) yield* fs.remove(target, { recursive: true })
      yield* report({ scope: "pull", phase: "build", fields: { environment: entry.name }, fraction: 0 })
      yield* installDirectory(target, (dir) => buildCatalogEnvironment(entry, dir, config.cacheDir))
      const installed = yield* readInstall(target)
      if (!installed) return yield* Effect.fail(new Error(`${target} is incomplete after install`))
      yield* report({ scope: "pull", phase: "installed", fields: { environment: entry.name }, fraction: 1 })
      return installed
    }).pipe(
      Effect.mapError((e) => new EnvironmentBuildFailed({ name: entry.name, detail: errorText(e) }))
    )

  // One build per environment at a time in this process; other processes are
  // kept apart by installDirectory's rename.
  const locks = new Map<string, Effect.Semaphore>()
  const locked = (name: string) => {
    let lock = locks.get(name)
    if (!lock) locks.set(name, (lock = Effect.unsafeMakeSemaphore(1)))
    return lock.withPermits(1)
  }

  const ensure = (name: string) =>
    Effect.gen(function*() {
      const entry = yield* lookup(name)
      const found = yield* locked(name)(
        Effect.flatMap(readInstall(entryDir(entry)), (found) => (found ? Effect.succeed(found) : install(entry)))
      )
      return asInstalled(entry, found)
    }).pipe(Effect.provide(context), Effect.withSpan("EnvironmentStore.ensure", { attributes: { name } }))

  const installed = (name: string) =>
    Effect.gen(function*() {
      const entry = yield* lookup(name)
      const found = yield* readInstall(entryDir(entry))
      return found ? asInstalled(entry, found) : undefined
    }).pipe(Effect.provide(context))

  const pull = (name: string) =>
    Effect.gen(function*() {
      const started = Date.now()
      const entry = yield* lookup(name)
      const { install: result, action } = yield* locked(name)(Effect.gen(function*() {
        const existing = yield* readInstall(entryDir(entry))
        if (existing) {
          yield* report({ scope: "pull", phase: "verify", fields: { environment: name } })
          if (yield* verifyInstall(existing)) return { install: existing, action: "already-installed" as const }
          yield* report({ scope: "pull", phase: "repair", fields: { environment: name, reason: "digest mismatch" } })
          return { install: yield* install(entry), action: "repaired" as const }
        }
        const damaged = yield* fs.exists(entryDir(entry)).pipe(Effect.orElseSucceed(() => false))
        return { install: yield* install(entry), action: damaged ? "repaired" as const : "built" as const }
      }))
      return {
        ...infoOf(entry, true),
        action,
        source: result.manifest.source,
        path: result.dir,
        rootfs_bytes: result.manifest.rootfs.bytes,
        rootfs_sha256: result.manifest.rootfs.sha256,
        duration_ms: Date.now() - started
      } satisfies PullResult
    }).pipe(Effect.provide(context))

  const inspect = (name: string) =>
    Effect.gen(function*() {
      const entry = yield* lookup(name)
      const found = yield* readInstall(entryDir(entry))
      return {
        ...infoOf(entry, found !== undefined),
        path: found?.dir ?? null,
        source: found?.manifest.source ?? null,
        built_at: found?.manifest.built_at ?? null,
        kernel: found?.manifest.kernel ?? null,
        rootfs_bytes: found?.manifest.rootfs.bytes ?? null,
        rootfs_sha256: found?.manifest.rootfs.sha256 ?? null,
        verified: found ? yield* verifyInstall(found) : null,
        packages: found?.manifest.packages ?? [],
        image: found?.manifest.image ?? null
      } satisfies InspectResult
    }).pipe(Effect.provide(context))

  /**
   * Everything under the cache that no current environment uses: versions the
   * catalog moved past, installs that fail the cheap check, leftovers of
   * interrupted builds, and the .deb download cache.
   */
  const prune = Effect.gen(function*() {
    const removed: Array<PruneResult["removed"][number]> = []
    const remove = (path: string, reason: string) =>
      Effect.gen(function*() {
        const bytes = yield* diskUsage(path)
        const ok = yield* fs.remove(path, { recursive: true }).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
        if (ok) removed.push({ path, reason, bytes })
      })
    const current = new Map(CATALOG.map((e) => [cacheName(e.name), e]))
    for (const name of yield* fs.readDirectory(root).pipe(Effect.orElseSucceed(() => []))) {
      const dir = Path.join(root, name)
      const entry = current.get(name)
      if (/\.partial-\d+-/.test(name)) {
        yield* Effect.ignore(removeStalePartials(root))
        continue
      }
      if (!entry) {
        yield* remove(dir, "not in the catalog")
        continue
      }
      yield* Effect.ignore(removeStalePartials(dir))
      for (const version of yield* fs.readDirectory(dir).pipe(Effect.orElseSucceed(() => []))) {
        const versionDir = Path.join(dir, version)
        if (/\.partial-\d+-/.test(version)) continue
        if (version !== entry.version) yield* remove(versionDir, `old version of ${entry.name}`)
        else if (!(yield* readInstall(versionDir))) yield* remove(versionDir, `unfinished or damaged install of ${entry.name}`)
      }
    }
    const debs = Path.join(config.cacheDir, "debs")
    if (yield* fs.exists(debs).pipe(Effect.orElseSucceed(() => false))) yield* remove(debs, "downloaded Debian packages (fetched again when needed)")
    return { removed, freed_bytes: removed.reduce((sum, r) => sum + r.bytes, 0) } satisfies PruneResult
  }).pipe(Effect.provide(context))

  const list = Effect.forEach(CATALOG, (entry) =>
    Effect.map(readInstall(entryDir(entry)), (found) => infoOf(entry, found !== undefined))).pipe(
      Effect.provide(context)
    )

  const push = (name: string, _reference: string) =>
    Effect.fail(new EnvironmentBuildFailed({ name, detail: "push is not available yet" }))

  return EnvironmentStore.of({ list, ensure, installed, pull, inspect, prune, push })
})

export const EnvironmentStoreLive = Layer.effect(EnvironmentStore, make)
