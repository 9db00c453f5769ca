/**
 * Which IP addresses are "public": everything but the host itself and the
 * networks beside it. Used wherever something untrusted chooses where the
 * host connects (a registry a tool caller names, the guest's network), so
 * that neither can reach the host's loopback, its private networks or a
 * cloud's metadata service (169.254.169.254).
 *
 * Documentation ranges (TEST-NET-1/2/3) are left public: nothing private
 * lives there, and tests use them for hosts that stand in for the Internet.
 */
import * as Net from "node:net"
import * as Os from "node:os"

/** [address, prefix] of every range that is not public. */
export const NON_PUBLIC_IPV4: ReadonlyArray<readonly [string, number]> = [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local, cloud metadata
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4] // reserved, broadcast
]

export const NON_PUBLIC_IPV6: ReadonlyArray<readonly [string, number]> = [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["ff00::", 8], // multicast
  ["64:ff9b::", 96], // NAT64: likewise
  ["64:ff9b:1::", 48], // local-use NAT64
  ["2002::", 16], // 6to4: carries any IPv4 address
  ["2001:db8::", 32] // documentation, never routed
]

/**
 * IPv4-mapped IPv6. isPublicAddress judges these by the IPv4 address they
 * carry (a BlockList rule for them would match every IPv4 address); the
 * network jail refuses them outright.
 */
export const IPV4_MAPPED: readonly [string, number] = ["::ffff:0:0", 96]

const blockList = (() => {
  const list = new Net.BlockList()
  for (const [address, prefix] of NON_PUBLIC_IPV4) list.addSubnet(address, prefix, "ipv4")
  for (const [address, prefix] of NON_PUBLIC_IPV6) list.addSubnet(address, prefix, "ipv6")
  return list
})()

/** An IPv6 address that carries an IPv4 one (::ffff:a.b.c.d, ::a.b.c.d, NAT64 64:ff9b::a.b.c.d), as that. */
const embeddedIpv4 = (address: string): string | undefined => {
  const m = /^(?:::ffff:|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (m) return m[1]
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address)
  if (!hex) return undefined
  const hi = parseInt(hex[1]!, 16)
  const lo = parseInt(hex[2]!, 16)
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
}

/** This host's own addresses, on every interface. */
export const hostAddresses = (): Array<string> =>
  Object.values(Os.networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address.replace(/%.*$/, "")))

/** Whether `address` (an IP literal) is public and not one of this host's own. */
export const isPublicAddress = (address: string, own: ReadonlyArray<string> = hostAddresses()): boolean => {
  const bare = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "")
  const family = Net.isIP(bare)
  if (family === 0) return false
  const v4 = family === 6 ? embeddedIpv4(bare) : bare
  if (v4 !== undefined && v4 !== bare) return isPublicAddress(v4, own)
  if (blockList.check(bare, family === 4 ? "ipv4" : "ipv6")) return false
  return !own.some((o) => o.toLowerCase() === bare.toLowerCase())
}
