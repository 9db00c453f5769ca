/** The kernel and initramfs every VM boots: obtained, built and cached once. */
import * as Context from "effect/Context"
import type { KernelError } from "../contract/errors.js"
import type * as Effect from "effect/Effect"

export interface BootAssets {
  readonly kernel: string
  readonly initrd: string
  /** `6.1.0-NN-cloud-amd64` for Debian's kernel, `custom-<digest>` for PYRO_KERNEL. */
  readonly kernelVersion: string
  readonly kernelSource: "debian" | "custom"
  readonly agentDigest: string
  /** Identifies kernel + initramfs together (template keys). */
  readonly digest: string
}

export interface KernelCacheStatus {
  readonly kernel: { readonly present: boolean; readonly version?: string; readonly path?: string; readonly source: "debian" | "custom" }
  readonly agent: { readonly built: boolean; readonly digest: string; readonly compiler: boolean }
  readonly initrd: { readonly present: boolean; readonly path?: string }
}

export { KernelError, type KernelFailure } from "../contract/errors.js"

export class KernelStore extends Context.Tag("pyro/KernelStore")<KernelStore, {
  /** Everything needed to boot, fetching and building what is missing. */
  readonly ensure: Effect.Effect<BootAssets, KernelError>
  /** What is cached, without fetching or building anything. */
  readonly status: Effect.Effect<KernelCacheStatus>
}>() {}
