import * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Path from "node:path"
import { buildCatalogEnvironment } from "../environment/build.js"
import { CATALOG, cacheName, type CatalogEntry, findEntry } from "../environment/catalog.js"
import { diskUsage, type InstallDir, readInstall, verifyInstall } from "../environment/install.js"
import { decodeManifestValue } from "../environment/manifest.js"
import { MANIFEST_FILE } from "../environment/manifest.js"
import {
  installContainerImage,
  installEnvironmentArtifact,
  isOciName,
  OCI_PREFIX,
  ociBlobDir
} from "../environment/oci.js"
import { installDirectory, removeStalePartials } from "../host/files.js"
import { pullImage } from "../oci/pull.js"
import { pushEnvironment } from "../oci/push.js"
import { formatReference, type ImageReference, loadReference } from "../oci/reference.js"
import {
  EnvironmentBuildFailed,
  type EnvironmentInfo,
  EnvironmentNotFound,
  EnvironmentNotInstalled,
  EnvironmentStore,
  type InspectResult,
  type InstalledEnvironment,
  type PruneResult,
  type PullResult,
  type PushResult
} from "../services/EnvironmentStore.js"
import { Progress, report } from "../services/Progress.js"
import { PyroConfig } from "../services/PyroConfig.js"
import { readTemplate, templatesRoot } from "../vm/template.js"
import { captureServices } from "./captureServices.js"

const errorText = (e: unknown) => (e instanceof Error ? e.message : String((e as { message?: unknown })?.message ?? e))

/** What a name refers to: a catalog entry (built locally) or an image in a registry. */
type Target =
  | { readonly kind: "catalog"; readonly name: string; readonly entry: CatalogEntry; readonly dir: string }
  | { readonly kind: "oci"; readonly name: string; readonly ref: ImageReference; readonly dir: string }

type PullAction = PullResult["action"]

export const make = Effect.gen(function*() {
  const config = yield* PyroConfig
  const context = yield* captureServices(FileSystem.FileSystem, CommandExecutor.CommandExecutor, Progress)
  const fs = yield* FileSystem.FileSystem
  const root = Path.join(config.cacheDir, "environments")
  const ociRoot = Path.join(root, "oci")
  const blobDir = ociBlobDir(config.cacheDir)

  const entryDir = (entry: CatalogEntry) => Path.join(root, cacheName(entry.name), entry.version)

  const resolve = (name: string): Effect.Effect<Target, EnvironmentNotFound | EnvironmentBuildFailed> => {
    const entry = findEntry(name)
    if (entry) return Effect.succeed({ kind: "catalog", name, entry, dir: entryDir(entry) })
    if (!isOciName(name)) {
      return Effect.fail(new EnvironmentNotFound({ name, known: CATALOG.map((e) => e.name) }))
    }
    return loadReference(name).pipe(
      Effect.map((ref): Target => {
        const canonical = formatReference(ref)
        return { kind: "oci", name: canonical, ref, dir: Path.join(ociRoot, cacheName(canonical.slice(OCI_PREFIX.length))) }
      }),
      Effect.mapError((e) => new EnvironmentBuildFailed({ name, detail: e.message }))
    )
  }

  const infoOf = (target: Target, install: InstallDir | undefined): EnvironmentInfo => {
    if (target.kind === "catalog") {
      const e = target.entry
      return {
        name: e.name,
        version: e.version,
        description: e.description,
        default_packages: e.default_packages,
        distribution: e.distribution,
        distribution_version: e.distribution_version,
        platform: e.platform,
        installed: install !== undefined
      }
    }
    const m = install?.manifest
    return {
      name: target.name,
      version: m?.version ?? "",
      description: m?.description ?? `OCI image ${target.name} (not pulled yet)`,
      default_packages: m?.default_packages ?? [],
      distribution: m?.distribution ?? "unknown",
      distribution_version: m?.distribution_version ?? "",
      platform: m?.platform ?? "linux-x86_64",
      installed: install !== undefined
    }
  }

  const asInstalled = (target: Target, install: InstallDir): InstalledEnvironment => ({
    name: target.name,
    version: install.manifest.version,
    dir: install.dir,
    rootImage: install.rootImage,
    manifest: install.manifest
  })

  /** Replace whatever is at `dir` by what `fill` builds aside. */
  const replaceInstall = <E, R>(dir: string, fill: (aside: string) => Effect.Effect<void, E, R>) =>
    Effect.gen(function*() {
      yield* Effect.ignore(removeStalePartials(Path.dirname(dir)))
      if (yield* fs.exists(dir).pipe(Effect.orElseSucceed(() => false))) yield* fs.remove(dir, { recursive: true })
      yield* installDirectory(dir, fill)
      const installed = yield* readInstall(dir)
      if (!installed) return yield* Effect.fail(new Error(`${dir} is incomplete after install`))
      return installed
    })

  /** A prebuilt catalog environment from PYRO_REGISTRY, if one is published for this version. */
  const fromRegistry = (entry: CatalogEntry) =>
    Effect.gen(function*() {
      if (Option.isNone(config.registry)) return false
      const reference = `${config.registry.value.replace(/\/+$/, "")}/${entry.name}`
      const attempt = yield* Effect.either(Effect.gen(function*() {
        const ref = yield* loadReference(reference)
        yield* report({ scope: "pull", phase: "download", fields: { environment: entry.name, from: reference } })
        const image = yield* pullImage(ref, { blobDir })
        if (image.kind !== "pyro-environment") return yield* Effect.fail(new Error("not a pyro environment"))
        const published = yield* decodeManifestValue(image.config)
        if (published.name !== entry.name || published.version !== entry.version) {
          return yield* Effect.fail(new Error(`it holds ${published.name} ${published.version}, not ${entry.version}`))
        }
        yield* replaceInstall(entryDir(entry), (aside) =>
          Effect.asVoid(installEnvironmentArtifact(image, reference, aside, entry.name)))
      }))
      if (Either.isRight(attempt)) return true
      yield* report({
        scope: "pull",
        phase: "fallback",
        fields: { environment: entry.name, reason: JSON.stringify(errorText(attempt.left).split("\n")[0]) }
      })
      return false
    })

  /** Install a target, whatever is there now; returns how. */
  const install = (target: Target): Effect.Effect<
    { install: InstallDir; action: "built" | "pulled" },
    EnvironmentBuildFailed,
    FileSystem.FileSystem | CommandExecutor.CommandExecutor | Progress
  > =>
    Effect.gen(function*() {
      if (target.kind === "catalog") {
        if (yield* fromRegistry(target.entry)) {
          const installed = yield* readInstall(target.dir)
          if (installed) return { install: installed, action: "pulled" as const }
        }
        yield* report({ scope: "pull", phase: "build", fields: { environment: target.name }, fraction: 0 })
        const installed = yield* replaceInstall(target.dir, (aside) => buildCatalogEnvironment(target.entry, aside, config.cacheDir))
        yield* report({ scope: "pull", phase: "installed", fields: { environment: target.name }, fraction: 1 })
        return { install: installed, action: "built" as const }
      }
      yield* report({ scope: "pull", phase: "resolve", fields: { environment: target.name } })
      const image = yield* pullImage(target.ref, { blobDir })
      const installed = yield* replaceInstall(target.dir, (aside) =>
        image.kind === "pyro-environment"
          ? Effect.asVoid(installEnvironmentArtifact(image, target.name, aside, target.name))
          : installContainerImage(image, target.name, aside))
      yield* report({ scope: "pull", phase: "installed", fields: { environment: target.name }, fraction: 1 })
      return { install: installed, action: "pulled" as const }
    }).pipe(Effect.mapError((e) => new EnvironmentBuildFailed({ name: target.name, detail: errorText(e) })))

  // One install per environment at a time in this process; other processes are
  // kept apart by installDirectory's rename.
  const locks = new Map<string, Effect.Semaphore>()
  const locked = (name: string) => {
    let lock = locks.get(name)
    if (!lock) locks.set(name, (lock = Effect.unsafeMakeSemaphore(1)))
    return lock.withPermits(1)
  }

  const ensure = (name: string) =>
    Effect.gen(function*() {
      const target = yield* resolve(name)
      const found = yield* locked(target.name)(
        Effect.flatMap(readInstall(target.dir), (found) =>
          found ? Effect.succeed(found) : Effect.map(install(target), (r) => r.install))
      )
      return asInstalled(target, found)
    }).pipe(Effect.provide(context), Effect.withSpan("EnvironmentStore.ensure", { attributes: { name } }))

  const installed = (name: string) =>
    Effect.gen(function*() {
      const target = yield* resolve(name).pipe(
        Effect.catchTag("EnvironmentBuildFailed", () => Effect.fail(new EnvironmentNotFound({ name, known: CATALOG.map((e) => e.name) })))
      )
      const found = yield* readInstall(target.dir)
      return found ? asInstalled(target, found) : undefined
    }).pipe(Effect.provide(context))

  /** The digest of the image an OCI install came from, as recorded in its manifest. */
  const sourceDigest = (install: InstallDir) =>
    install.manifest.image?.manifest_digest ?? /@(sha256:[0-9a-f]{64})/.exec(install.manifest.source)?.[1]

  const pull = (name: string) =>
    Effect.gen(function*() {
      const started = Date.now()
      const target = yield* resolve(name)
      const { install: result, action } = yield* locked(target.name)(Effect.gen(function*() {
        const existing = yield* readInstall(target.dir)
        if (existing && target.kind === "oci") {
          // A tag may have moved: ask the registry what it names now.
          yield* report({ scope: "pull", phase: "resolve", fields: { environment: target.name } })
          const image = yield* pullImage(target.ref, { blobDir }).pipe(
            Effect.mapError((e) => new EnvironmentBuildFailed({ name: target.name, detail: e.message }))
          )
          if (sourceDigest(existing) !== image.manifestDigest) return yield* install(target)
        }
        if (existing) {
          yield* report({ scope: "pull", phase: "verify", fields: { environment: target.name } })
          if (yield* verifyInstall(existing)) return { install: existing, action: "already-installed" as PullAction }
          yield* report({ scope: "pull", phase: "repair", fields: { environment: target.name, reason: "digest mismatch" } })
          return { install: (yield* install(target)).install, action: "repaired" as PullAction }
        }
        const damaged = yield* fs.exists(target.dir).pipe(Effect.orElseSucceed(() => false))
        const fresh = yield* install(target)
        return { install: fresh.install, action: damaged ? "repaired" as PullAction : fresh.action }
      }))
      return {
        ...infoOf(target, result),
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
      const target = yield* resolve(name).pipe(
        Effect.catchTag("EnvironmentBuildFailed", () => Effect.fail(new EnvironmentNotFound({ name, known: CATALOG.map((e) => e.name) })))
      )
      const found = yield* readInstall(target.dir)
      return {
        ...infoOf(target, found),
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

  /** Installed OCI environments, by the name they were pulled as. */
  const ociInstalls = Effect.gen(function*() {
    const found: Array<{ target: Target; install: InstallDir }> = []
    for (const dirName of yield* fs.readDirectory(ociRoot).pipe(Effect.orElseSucceed(() => []))) {
      if (dirName === "blobs" || /\.partial-\d+-/.test(dirName)) continue
      const install = yield* readInstall(Path.join(ociRoot, dirName))
      if (!install) continue
      const target = yield* Effect.option(resolve(install.manifest.name))
      if (Option.isSome(target) && target.value.kind === "oci") found.push({ target: target.value, install })
    }
    return found
  })

  /**
   * Everything under the cache that no current environment uses: versions the
   * catalog moved past, installs that fail the cheap check, leftovers of
   * interrupted builds, and download caches (.debs, OCI blobs).
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
    yield* Effect.ignore(removeStalePartials(root))
    for (const name of yield* fs.readDirectory(root).pipe(Effect.orElseSucceed(() => []))) {
      const dir = Path.join(root, name)
      if (/\.partial-\d+-/.test(name)) continue
      if (name === "oci") {
        yield* Effect.ignore(removeStalePartials(dir))
        for (const image of yield* fs.readDirectory(dir).pipe(Effect.orElseSucceed(() => []))) {
          if (image === "blobs" || /\.partial-\d+-/.test(image)) continue
          if (!(yield* readInstall(Path.join(dir, image)))) yield* remove(Path.join(dir, image), "unfinished or damaged image install")
        }
        continue
      }
      const entry = current.get(name)
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
    // VM templates of images no installed environment has any more (rebuilt, pruned).
    const installedDigests = new Set<string>()
    for (const entry of CATALOG) {
      const found = yield* readInstall(entryDir(entry))
      if (found) installedDigests.add(found.manifest.rootfs.sha256)
    }
    for (const { install } of yield* ociInstalls) installedDigests.add(install.manifest.rootfs.sha256)
    const templates = templatesRoot(config.cacheDir)
    for (const name of yield* fs.readDirectory(templates).pipe(Effect.orElseSucceed(() => []))) {
      const dir = Path.join(templates, name)
      const template = readTemplate(dir)
      if (/\.partial-\d+-/.test(name)) continue
      if (!template) yield* remove(dir, "unfinished or damaged VM template")
      else if (!installedDigests.has(template.manifest.inputs.root_digest)) {
        yield* remove(dir, `VM template of an environment image no longer installed (${template.manifest.inputs.environment})`)
      }
    }
    yield* Effect.ignore(removeStalePartials(templates))
    for (const [path, reason] of [
      [Path.join(config.cacheDir, "debs"), "downloaded Debian packages (fetched again when needed)"],
      [blobDir, "downloaded OCI blobs (fetched again when needed)"],
      [Path.join(config.cacheDir, "v8"), "the CLI's V8 code caches (made again by the next runs)"]
    ] as const) {
      if (yield* fs.exists(path).pipe(Effect.orElseSucceed(() => false))) yield* remove(path, reason)
    }
    return { removed, freed_bytes: removed.reduce((sum, r) => sum + r.bytes, 0) } satisfies PruneResult
  }).pipe(Effect.provide(context))

  const list = Effect.gen(function*() {
    const catalog = yield* Effect.forEach(CATALOG, (entry) => {
      const target: Target = { kind: "catalog", name: entry.name, entry, dir: entryDir(entry) }
      return Effect.map(readInstall(target.dir), (found) => infoOf(target, found))
    })
    const images = (yield* ociInstalls).map(({ install, target }) => infoOf(target, install))
    return [...catalog, ...images]
  }).pipe(Effect.provide(context))

  const push = (name: string, reference: string) =>
    Effect.gen(function*() {
      const started = Date.now()
      const target = yield* resolve(name)
      const found = yield* readInstall(target.dir)
      if (!found) return yield* new EnvironmentNotInstalled({ name })
      const ref = yield* loadReference(reference).pipe(
        Effect.mapError((e) => new EnvironmentBuildFailed({ name, detail: e.message }))
      )
      const configText = yield* fs.readFileString(Path.join(found.dir, MANIFEST_FILE)).pipe(
        Effect.mapError((e) => new EnvironmentBuildFailed({ name, detail: e.message }))
      )
      yield* report({ scope: "push", phase: "upload", fields: { environment: name, to: formatReference(ref) } })
      const digest = yield* pushEnvironment(ref, { config: configText, rootfsPath: found.rootImage, blobDir }).pipe(
        Effect.mapError((e) => new EnvironmentBuildFailed({ name, detail: `push to ${reference} failed: ${e.message}` }))
      )
      return {
        environment: target.name,
        reference: formatReference(ref),
        digest,
        rootfs_bytes: found.manifest.rootfs.bytes,
        duration_ms: Date.now() - started
      } satisfies PushResult
    }).pipe(Effect.provide(context))

  return EnvironmentStore.of({ list, ensure, installed, pull, inspect, prune, push })
})

export const EnvironmentStoreLive = Layer.effect(EnvironmentStore, make)
