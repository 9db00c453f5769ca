/**
 * The initramfs: the agent as /init plus the boot modules and their load order:
 * `order` for every VM, `order-network` (virtio_net and its deps) only for VMs
 * with a NIC. Uncompressed, because unpacking is then a copy (the kernel
 * accepts plain cpio).
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Path from "node:path"
import { writeFileAtomic } from "../host/files.js"
import { report } from "../services/Progress.js"
import { KernelError } from "../services/KernelStore.js"
import { type CpioEntry, cpioArchive } from "./cpio.js"
import { NETWORK_MODULES } from "./modules.js"

export interface InitramfsInputs {
  readonly kernelId: string
  readonly agentBinary: string
  readonly agentDigest: string
  /** [name, path of name.ko] in load order. */
  readonly modules: ReadonlyArray<readonly [string, string]>
}

export const initramfsPath = (cacheDir: string, inputs: Pick<InitramfsInputs, "kernelId" | "agentDigest">) =>
  Path.join(cacheDir, "initramfs", `${inputs.kernelId}-${inputs.agentDigest.slice(0, 16)}.cpio`)

export const ensureInitramfs = (cacheDir: string, inputs: InitramfsInputs) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = initramfsPath(cacheDir, inputs)
    if (yield* fs.exists(path)) return path
    yield* report({ scope: "initramfs", phase: "build", fields: { kernel: inputs.kernelId } })
    const entries: Array<CpioEntry> = [
      ...["dev", "proc", "sys", "mnt", "lib", "lib/modules", "lib/modules/pyro"].map((p) => ({ type: "dir" as const, path: p, mode: 0o755 })),
      { type: "char", path: "dev/console", mode: 0o600, major: 5, minor: 1 },
      { type: "file", path: "init", mode: 0o755, data: yield* fs.readFile(inputs.agentBinary) }
    ]
    for (const [name, file] of inputs.modules) {
      entries.push({ type: "file", path: `lib/modules/pyro/${name}.ko`, mode: 0o644, data: yield* fs.readFile(file) })
    }
    const orderFile = (names: ReadonlyArray<string>) => new TextEncoder().encode(names.map((n) => `${n}\n`).join(""))
    const names = inputs.modules.map(([name]) => name)
    entries.push(
      { type: "file", path: "lib/modules/pyro/order", mode: 0o644, data: orderFile(names.filter((n) => !NETWORK_MODULES.has(n))) },
      { type: "file", path: "lib/modules/pyro/order-network", mode: 0o644, data: orderFile(names.filter((n) => NETWORK_MODULES.has(n))) }
    )
    yield* fs.makeDirectory(Path.dirname(path), { recursive: true })
    yield* writeFileAtomic(path, cpioArchive(entries))
    return path
  }).pipe(
    Effect.catchTags({
      SystemError: (e) => Effect.fail(new KernelError({ reason: "Initramfs", detail: e.message })),
      BadArgument: (e) => Effect.fail(new KernelError({ reason: "Initramfs", detail: e.message }))
    })
  )
