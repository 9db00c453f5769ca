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
  ["fec0::", 10], // site-local (deprecated, still private)
  ["ff00::", 8], // multicast
  ["64:ff9b::", 96], // NAT64: isPublicAddress judges these by the IPv4 address they carry
  ["64:ff9b:1::", 48], // local-use NAT64
  ["2001::", 32], // Teredo: carries any IPv4 address
  ["2002::", 16], // 6to4: likewise
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

/** The 16 bytes of an IPv6 address (with "::" and a dotted IPv4 tail), or undefined. */
const ipv6Bytes = (address: string): Uint8Array | undefined => {
  let text = address
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (dotted) {
    const o = dotted[1]!.split(".").map(Number)
    text = text.slice(0, dotted.index) + `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`
  }
  const [left, right] = text.split("::") as [string, string | undefined]
  const groups = (part: string | undefined) => (part ? part.split(":") : [])
  const head = groups(left)
  const tail = groups(right)
  const fill = right === undefined ? 0 : 8 - head.length - tail.length
  const all = [...head, ...Array.from({ length: fill }, () => "0"), ...tail]
  if (all.length !== 8 || all.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return undefined
  const bytes = new Uint8Array(16)
  all.forEach((g, i) => {
    bytes[2 * i] = parseInt(g, 16) >> 8
    bytes[2 * i + 1] = parseInt(g, 16) & 255
  })
  return bytes
}

const startsWith = (bytes: Uint8Array, prefix: ReadonlyArray<number>) => prefix.every((b, i) => bytes[i] === b)

/**
 * The IPv4 address an IPv6 one carries, in whatever form it is written:
 * mapped (::ffff:a.b.c.d), translated (::ffff:0:a.b.c.d), compatible
 * (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d), dotted or in hex.
 */
const embeddedIpv4 = (address: string): string | undefined => {
  const bytes = ipv6Bytes(address)
  if (!bytes) return undefined
  const zeros = (n: number) => Array.from({ length: n }, () => 0)
  const carries = startsWith(bytes, [...zeros(10), 0xff, 0xff]) ||
    startsWith(bytes, [...zeros(8), 0xff, 0xff, 0, 0]) ||
    startsWith(bytes, [0, 0x64, 0xff, 0x9b, ...zeros(8)]) ||
    // ::a.b.c.d, but not :: and ::1
    (startsWith(bytes, zeros(12)) && (bytes[12]! | bytes[13]!) !== 0)
  return carries ? Array.from(bytes.subarray(12)).join(".") : undefined
}

/** This host's own addresses, on every interface. */
export const hostAddresses = (): Array<string> =>
  Object.values(Os.networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address.replace(/%.*$/, "")))

/** Whether `address` (an IP literal) is public and not one of this host's own. */
export const isPublicAddress = (address: string, own: ReadonlyArray<string> = hostAddresses()): boolean => {
  const bare = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "")
  const family = Net.isIP(bare)
  if (family === 0) return false
  const v4 = family === 6 ? embeddedIpv4(bare) : undefined
  if (v4 !== undefined) return isPublicAddress(v4, own)
  if (blockList.check(bare, family === 4 ? "ipv4" : "ipv6")) return false
  return !own.some((o) => o.toLowerCase() === bare.toLowerCase())
}
