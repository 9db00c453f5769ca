/** The boot spec of a VM of an installed environment, template inputs included. */
import type { InstalledEnvironment } from "../services/EnvironmentStore.js"
import type { BootAssets } from "../services/KernelStore.js"
import type { BootSpec } from "../services/Vmm.js"
import { type GuestNetwork, hasNetwork, proxied } from "./network/policy.js"

export interface Sizing {
  readonly vcpus: number
  readonly memMib: number
  readonly network: boolean
  /** With network: only these names, through the host's proxy (BootSpec.allowHosts). */
  readonly allowHosts?: ReadonlyArray<string>
  /** Host channels (BootSpec.channels); default 1. */
  readonly channels?: number
}

/** The sizing of a contract input or a machine record (`vcpu_count`, `mem_mib`) with its network. */
export const sizingOf = (x: { readonly vcpu_count: number; readonly mem_mib: number }, network: GuestNetwork): Sizing => ({
  vcpus: x.vcpu_count,
  memMib: x.mem_mib,
  network: hasNetwork(network),
  ...(proxied(network) ? { allowHosts: network.allowHosts! } : {})
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
  ...(sizing.network && sizing.allowHosts ? { allowHosts: sizing.allowHosts } : {}),
  ...(sizing.channels === undefined ? {} : { channels: sizing.channels }),
  template: {
    environment: environment.name,
    rootDigest: environment.manifest.rootfs.sha256,
    bootDigest: assets.digest
  }
})
