/**
 * Debian's cloud kernel (linux-image-cloud-amd64): small, with the virtio
 * drivers as uncompressed modules and ext4 built in. Fetched with apt, unpacked
 * with dpkg-deb, and reduced to vmlinuz plus the boot modules under
 * `<cache>/kernels/<package>/`.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Path from "node:path"
import { fetchDeb, resolveDependency, extractDeb, debVersion } from "../host/debian.js"
import { installDirectory, withTempDir, writeFileAtomic } from "../host/files.js"
import { report } from "../services/Progress.js"
import { KernelError } from "../services/KernelStore.js"
import { BOOT_MODULES } from "./modules.js"
import { extractVmlinux } from "./vmlinux.js"

export const KERNEL_METAPACKAGE = "linux-image-cloud-amd64"

export const KernelManifest = Schema.Struct({
  package: Schema.String,
  packageVersion: Schema.String,
  kernelVersion: Schema.String,
  modules: Schema.Array(Schema.String),
  /** What QEMU boots: the uncompressed "vmlinux" when it could be extracted, else "vmlinuz". */
  bootImage: Schema.optionalWith(Schema.Literal("vmlinux", "vmlinuz"), { default: () => "vmlinuz" as const })
})
export type KernelManifest = typeof KernelManifest.Type

const encodeManifest = Schema.encode(Schema.parseJson(KernelManifest, { space: 2 }))

const Pointer = Schema.Struct({ package: Schema.String })

export interface InstalledKernel {
  readonly dir: string
  /** The image QEMU boots. */
  readonly vmlinuz: string
  readonly modulesDir: string
  readonly manifest: KernelManifest
}

const kernelsDir = (cacheDir: string) => Path.join(cacheDir, "kernels")
const pointerPath = (cacheDir: string) => Path.join(kernelsDir(cacheDir), "debian-cloud.json")

const readJson = <A, I>(schema: Schema.Schema<A, I>, path: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(path)).pipe(
    Effect.flatMap(Schema.decodeUnknown(Schema.parseJson(schema))),
    Effect.option
  )

const installed = (dir: string) =>
  Effect.gen(function*() {
    const manifest = yield* readJson(KernelManifest, Path.join(dir, "kernel.json"))
    if (Option.isNone(manifest)) return Option.none<InstalledKernel>()
    return Option.some({
      dir,
      vmlinuz: Path.join(dir, manifest.value.bootImage),
      modulesDir: Path.join(dir, "modules"),
      manifest: manifest.value
    })
  })

/** The cached kernel, if any, without touching apt. */
export const cachedDebianKernel = (cacheDir: string) =>
  Effect.gen(function*() {
    const pointer = yield* readJson(Pointer, pointerPath(cacheDir))
    if (Option.isNone(pointer)) return Option.none<InstalledKernel>()
    return yield* installed(Path.join(kernelsDir(cacheDir), pointer.value.package))
  })

/** Find each module file under a lib/modules tree (or a flat directory of .ko files). */
export const locateModules = (root: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const found = new Map<string, string>()
    const walk = (dir: string): Effect.Effect<void> =>
      Effect.gen(function*() {
        const names = yield* fs.readDirectory(dir).pipe(Effect.orElseSucceed(() => []))
        for (const name of names) {
          const full = Path.join(dir, name)
          const info = yield* fs.stat(full).pipe(Effect.option)
          if (Option.isNone(info)) continue
          if (info.value.type === "Directory") yield* walk(full)
          else if (name.endsWith(".ko")) found.set(name.slice(0, -3).replaceAll("-", "_"), full)
        }
      })
    yield* walk(root)
    return BOOT_MODULES.flatMap((m) => (found.has(m) ? [[m, found.get(m)!] as const] : []))
  })

export const ensureDebianKernel = (cacheDir: string) =>
  Effect.gen(function*() {
    const cached = yield* cachedDebianKernel(cacheDir)
    if (Option.isSome(cached)) return cached.value
    const fs = yield* FileSystem.FileSystem
    yield* report({ scope: "kernel", phase: "resolve", fields: { package: KERNEL_METAPACKAGE } })
    const pkg = yield* resolveDependency(KERNEL_METAPACKAGE, "linux-image-")
    yield* report({ scope: "kernel", phase: "download", fields: { package: pkg } })
    const deb = yield* fetchDeb(pkg, Path.join(cacheDir, "debs"))
    const target = Path.join(kernelsDir(cacheDir), pkg)
    yield* report({ scope: "kernel", phase: "extract", fields: { package: pkg } })
    yield* installDirectory(target, (dir) =>
      withTempDir(kernelsDir(cacheDir), "unpack", (unpacked) =>
        Effect.gen(function*() {
          yield* extractDeb(deb, unpacked)
          const boot = Path.join(unpacked, "boot")
          const vmlinuz = (yield* fs.readDirectory(boot)).find((n) => n.startsWith("vmlinuz-"))
          if (!vmlinuz) return yield* new KernelError({ reason: "Kernel", detail: `${pkg} contains no /boot/vmlinuz-*` })
          const kernelVersion = vmlinuz.slice("vmlinuz-".length)
          yield* fs.copyFile(Path.join(boot, vmlinuz), Path.join(dir, "vmlinuz"))
          const elf = extractVmlinux(yield* fs.readFile(Path.join(dir, "vmlinuz")))
          if (elf) yield* fs.writeFile(Path.join(dir, "vmlinux"), elf)
          const modules = yield* locateModules(Path.join(unpacked, "lib", "modules", kernelVersion))
          yield* fs.makeDirectory(Path.join(dir, "modules"))
          for (const [name, file] of modules) yield* fs.copyFile(file, Path.join(dir, "modules", `${name}.ko`))
          const manifest: KernelManifest = {
            package: pkg,
            packageVersion: debVersion(deb),
            kernelVersion,
            modules: modules.map(([name]) => name),
            bootImage: elf ? "vmlinux" : "vmlinuz"
          }
          yield* fs.writeFileString(Path.join(dir, "kernel.json"), yield* encodeManifest(manifest))
        })))
    yield* writeFileAtomic(pointerPath(cacheDir), JSON.stringify({ package: pkg }))
    const result = yield* installed(target)
    if (Option.isNone(result)) return yield* new KernelError({ reason: "Kernel", detail: `${target} is incomplete` })
    return result.value
  }).pipe(
    Effect.catchTags({
      DebianPackageError: (e) => Effect.fail(new KernelError({ reason: "Kernel", detail: e.message })),
      SystemError: (e) => Effect.fail(new KernelError({ reason: "Kernel", detail: e.message })),
      BadArgument: (e) => Effect.fail(new KernelError({ reason: "Kernel", detail: e.message })),
      ParseError: (e) => Effect.fail(new KernelError({ reason: "Kernel", detail: e.message }))
    })
  )
