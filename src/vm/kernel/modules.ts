/**
 * Kernel modules the agent loads at boot, in dependency order (virtio needs
 * virtio_ring first). Debian's cloud kernel builds these as modules; a kernel
 * with them built in simply ships none, and the agent skips what is absent.
 */
export const BOOT_MODULES = [
  "virtio_ring",
  "virtio",
  "virtio_mmio",
  "virtio_blk",
  "virtio_console",
  "failover",
  "net_failover",
  "virtio_net",
  "overlay"
] as const
