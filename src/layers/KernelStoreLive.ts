import * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import { captureServices } from "./captureServices.js"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Path from "node:path"
import { sha256 } from "../host/files.js"
import { type BootAssets, type KernelCacheStatus, KernelError, KernelStore } from "../services/KernelStore.js"
import { Progress } from "../services/Progress.js"
import { PyroConfig } from "../services/PyroConfig.js"
import { AGENT_COMPILER, agentDigest, agentPath, ensureAgent } from "../kernel/agentBuild.js"
import { cachedDebianKernel, ensureDebianKernel, locateModules } from "../kernel/debianKernel.js"
import { ensureInitramfs, initramfsPath } from "../kernel/initramfs.js"
import { which } from "../host/which.js"

interface KernelChoice {
  readonly id: string
  readonly vmlinuz: string
  readonly source: "debian" | "custom"
  readonly modules: ReadonlyArray<readonly [string, string]>
}

export const make = Effect.gen(function*() {
  const config = yield* PyroConfig
  const context = yield* captureServices(FileSystem.FileSystem, CommandExecutor.CommandExecutor, Progress)
  const fs = yield* FileSystem.FileSystem

  /** PYRO_KERNEL: identified by path, size and mtime, so a changed file is noticed without hashing it. */
  const customKernel = (path: string) =>
    Effect.gen(function*() {
      const info = yield* fs.stat(path).pipe(
        Effect.mapError(() => new KernelError({ reason: "Kernel", detail: `PYRO_KERNEL=${path} does not exist` }))
      )
      const mtime = Option.getOrElse(info.mtime, () => new Date(0)).getTime()
      const modules = Option.isSome(config.kernelModulesDir) ? yield* locateModules(config.kernelModulesDir.value) : []
      return {
        id: `custom-${sha256(`${path}\0${info.size}\0${mtime}`).slice(0, 16)}`,
        vmlinuz: path,
        source: "custom" as const,
        modules
      }
    })

  const debianKernel = Effect.map(ensureDebianKernel(config.cacheDir), (k): KernelChoice => ({
    id: k.manifest.kernelVersion,
    vmlinuz: k.vmlinuz,
    source: "debian",
    modules: k.manifest.modules.map((m) => [m, Path.join(k.modulesDir, `${m}.ko`)] as const)
  }))

  const build = Effect.gen(function*() {
    const kernel: KernelChoice = Option.isSome(config.kernelPath)
      ? yield* customKernel(config.kernelPath.value)
      : yield* debianKernel
    const agent = yield* ensureAgent(config.cacheDir)
    const initrd = yield* ensureInitramfs(config.cacheDir, {
      kernelId: kernel.id,
      agentBinary: agent.path,
      agentDigest: agent.digest,
      modules: kernel.modules
    })
    return {
      kernel: kernel.vmlinuz,
      initrd,
      kernelVersion: kernel.id,
      kernelSource: kernel.source,
      agentDigest: agent.digest,
      digest: sha256(`${kernel.id}\0${agent.digest}\0${kernel.modules.map(([m]) => m).join(",")}`)
    } satisfies BootAssets
  }).pipe(Effect.provide(context), Effect.withSpan("KernelStore.ensure"))

  // Built once per process; a failure is not remembered, so a later call retries.
  const lock = yield* Effect.makeSemaphore(1)
  let assets: BootAssets | undefined
  const ensure = lock.withPermits(1)(
    Effect.suspend(() => (assets ? Effect.succeed(assets) : Effect.tap(build, (a) => Effect.sync(() => (assets = a)))))
  )

  const exists = (path: string) => fs.exists(path).pipe(Effect.orElseSucceed(() => false))
  const status: Effect.Effect<KernelCacheStatus> = Effect.gen(function*(): Effect.fn.Return<KernelCacheStatus, never, FileSystem.FileSystem> {
    const digest = yield* agentDigest.pipe(Effect.map((d) => d.digest), Effect.orElseSucceed(() => ""))
    const agent = {
      built: digest !== "" && (yield* exists(agentPath(config.cacheDir, digest))),
      digest,
      compiler: which(AGENT_COMPILER) !== undefined
    }
    if (Option.isSome(config.kernelPath)) {
      const path = config.kernelPath.value
      return { kernel: { present: yield* exists(path), source: "custom", path }, agent, initrd: { present: false } }
    }
    const debian = yield* cachedDebianKernel(config.cacheDir)
    if (Option.isNone(debian)) return { kernel: { present: false, source: "debian" }, agent, initrd: { present: false } }
    const { manifest, vmlinuz } = debian.value
    const initrd = initramfsPath(config.cacheDir, { kernelId: manifest.kernelVersion, agentDigest: digest })
    return {
      kernel: { present: true, source: "debian", path: vmlinuz, version: manifest.kernelVersion },
      agent,
      initrd: (yield* exists(initrd)) ? { present: true, path: initrd } : { present: false }
    }
  }).pipe(
    Effect.orElseSucceed((): KernelCacheStatus => ({
      kernel: { present: false, source: "debian" },
      agent: { built: false, digest: "", compiler: false },
      initrd: { present: false }
    })),
    Effect.provide(context)
  )

  return KernelStore.of({ ensure, status })
})

export const KernelStoreLive = Layer.effect(KernelStore, make)
