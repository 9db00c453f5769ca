/** vm_network_info: a VM's network as its guest sees it, and what the allowlist proxy refused. */
import type { VmNetworkInfo } from "../../contract/vm.js"
import { resultNetworkFields } from "../../machine/record.js"
import { type GuestNetwork, hasNetwork, PROXY_URL, proxied } from "./policy.js"
import { readRefusals } from "./refusals.js"

/** `netDir`: the VM's network files (egress.ts, egressDir). */
export const networkInfoOf = (vmId: string, network: GuestNetwork, netDir: string): VmNetworkInfo => {
  const common = { vm_id: vmId, ...resultNetworkFields(network), host_alias: null }
  if (!hasNetwork(network)) {
    return {
      ...common,
      mode: "none",
      interface: null,
      guest_ip: null,
      prefix_length: null,
      gateway: null,
      dns: [],
      proxy: null,
      refused_count: 0,
      refused_recent: []
    }
  }
  // With an allowlist the guest has no route and no resolver: only the proxy (guest/agent/net.c).
  const viaProxy = proxied(network)
  const refusals = viaProxy ? readRefusals(netDir) : { count: 0, recent: [] }
  return {
    ...common,
    mode: "qemu-user",
    interface: "eth0",
    guest_ip: "10.0.2.15",
    prefix_length: 24,
    gateway: viaProxy ? null : "10.0.2.2",
    dns: viaProxy ? [] : ["10.0.2.3"],
    proxy: viaProxy ? PROXY_URL : null,
    refused_count: refusals.count,
    refused_recent: refusals.recent
  }
}
