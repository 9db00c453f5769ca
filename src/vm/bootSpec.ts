/** The boot spec of a VM of an installed environment, template inputs included. */
import type { InstalledEnvironment } from "../services/EnvironmentStore.js"
import type { BootAssets } from "../services/KernelStore.js"
import type { BootSpec } from "../services/Vmm.js"

export interface Sizing {
  readonly vcpus: number
  readonly memMib: number
  readonly network: boolean
  /** Host channels (BootSpec.channels); default 1. */
  readonly channels?: number
}

/** The sizing of a contract input or a machine record (`vcpu_count`, `mem_mib`, `network`). */
export const sizingOf = (x: { readonly vcpu_count: number; readonly mem_mib: number; readonly network: boolean }): Sizing => ({
  vcpus: x.vcpu_count,
  memMib: x.mem_mib,
  network: x.network
})

export const bootSpecFor = (
  id: string,
  assets: BootAssets,
  environment: InstalledEnvironment,
  sizing: Sizing
): BootSpec => ({
  id,
  kernel: assets.kernel,
  initrd: assets.initrd,
  rootImage: environment.rootImage,
  vcpus: sizing.vcpus,
  memMib: sizing.memMib,
  network: sizing.network,
  ...(sizing.channels === undefined ? {} : { channels: sizing.channels }),
  template: {
    environment: environment.name,
    rootDigest: environment.manifest.rootfs.sha256,
    bootDigest: assets.digest
  }
})
