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

/**
 * The subset the agent loads only when the VM has a NIC (`pyro.net=1` on the
 * kernel command line): virtio_net and what it needs (its modinfo depends:
 * virtio_ring, virtio, net_failover; net_failover depends on failover). The
 * initramfs lists them in `order-network` instead of `order`, so a VM without
 * network does not spend boot time loading them.
 */
export const NETWORK_MODULES: ReadonlySet<string> = new Set(["failover", "net_failover", "virtio_net"])
