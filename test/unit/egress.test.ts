/** The rules netjail.sh applies in a networked VM's namespace (src/vm/network/egress.ts). */
import { describe, expect, it } from "@effect/vitest"
import * as Net from "node:net"
import { EGRESS_DNS, egressRules, hostGateway } from "../../src/vm/network/egress.js"

describe("egress rules", () => {
  const { rules4, rules6 } = egressRules(["192.0.2.2", "192.0.2.255", "fd00::2"])

  it("let DNS to pasta's forwarder through before refusing anything", () => {
    const lines = rules4.trim().split("\n")
    expect(lines[0]).toBe(`rule add pref 50 iif lo to ${EGRESS_DNS} ipproto udp dport 53 lookup main`)
  })

  it("refuse loopback, private, link-local and CGNAT ranges and the host's own addresses", () => {
    for (const prefix of ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "192.0.2.2/32", "192.0.2.255/32"]) {
      expect(rules4).toContain(`rule add pref 100 iif lo to ${prefix} unreachable`)
    }
    for (const prefix of ["::1/128", "fc00::/7", "fe80::/10", "::ffff:0:0/96", "fd00::2/128"]) {
      expect(rules6).toContain(`rule add pref 100 iif lo to ${prefix} unreachable`)
    }
  })

  it("move the local table after the refusals, so the namespace's own loopback is refused too", () => {
    for (const rules of [rules4, rules6]) expect(rules.trim().split("\n").slice(-2)).toEqual(["rule del pref 0", "rule add pref 200 lookup local"])
  })

  it("read the host's IPv4 gateway from the kernel's table", () => {
    const gateway = hostGateway()
    expect(gateway === "" || Net.isIPv4(gateway)).toBe(true)
  })
})
