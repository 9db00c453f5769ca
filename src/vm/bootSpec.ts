/** The boot spec of a VM of an installed environment, template inputs included. */
import type { InstalledEnvironment } from "../services/EnvironmentStore.js"
import type { BootAssets } from "../services/KernelStore.js"
import type { BootSpec } from "../services/Vmm.js"

export const bootSpecFor = (
  id: string,
  assets: BootAssets,
  environment: InstalledEnvironment,
  sizing: { readonly vcpus: number; readonly memMib: number; readonly network: boolean }
): BootSpec => ({
  id,
  kernel: assets.kernel,
  initrd: assets.initrd,
  rootImage: environment.rootImage,
  vcpus: sizing.vcpus,
  memMib: sizing.memMib,
  network: sizing.network,
  template: {
    environment: environment.name,
    rootDigest: environment.manifest.rootfs.sha256,
    bootDigest: assets.digest
  }
})
