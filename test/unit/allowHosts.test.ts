/**
 * allow_hosts without a VM: the entry syntax and the schema's bounds, the
 * matcher and the operator's cap, how network, network_policy and
 * allow_hosts combine, and the ClientHello SNI parser on crafted bytes.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { hostPatternProblem } from "../../src/contract/hostPattern.js"
import { requestedNetwork } from "../../src/contract/network.js"
import { VmRunInput } from "../../src/contract/vm.js"
import { parseAllowHosts } from "../../src/layers/PyroConfigLive.js"
import { hostAllowed, patternCovered } from "../../src/vm/network/allowHosts.js"
import { MAX_CLIENT_HELLO_BYTES, parseClientHelloSni } from "../../src/vm/network/clientHello.js"
import { kernelCommandLine, qemuArgs } from "../../src/vm/qemu/args.js"

const decodeRun = (extra: Record<string, unknown>) =>
  Schema.decodeUnknownEither(VmRunInput)({ environment: "tiny", command: "true", ...extra })

describe("allow_hosts entries", () => {
  it("takes lowercase names and leading wildcards, and nothing else", () => {
    for (const ok of ["github.com", "*.npmjs.org", "a", "x-1.example", `${"a".repeat(63)}.com`]) {
      expect(hostPatternProblem(ok), ok).toBeUndefined()
    }
    const bad: Record<string, RegExp> = {
      "": /empty/,
      "GitHub.com": /upper-case/,
      "github.com.": /ends with a dot/,
      "github.com:443": /port/,
      "::1": /port or is an IPv6/,
      "1.2.3.4": /IP address/,
      "127.1": /IP address/,
      "2130706433": /IP address/,
      "a.*.com": /wildcard/,
      "*": /wildcard/,
      "**.com": /wildcard/,
      "-a.com": /not a DNS name/,
      "a_b.com": /not a DNS name/,
      [`${"a".repeat(64)}.com`]: /not a DNS name/,
      [`${"a.".repeat(126)}com`]: /longer than 253/
    }
    for (const [entry, why] of Object.entries(bad)) expect(hostPatternProblem(entry), entry).toMatch(why)
  })

  it("the schema bounds the list and names the bad entry, before anything boots", () => {
    expect(Either.isRight(decodeRun({ network_policy: "egress", allow_hosts: Array.from({ length: 64 }, (_, i) => `h${i}.test`) })))
      .toBe(true)
    expect(Either.isLeft(decodeRun({ network_policy: "egress", allow_hosts: Array.from({ length: 65 }, (_, i) => `h${i}.test`) })))
      .toBe(true)
    const bad = decodeRun({ network_policy: "egress", allow_hosts: ["ok.test", "10.0.0.1"] })
    expect(Either.isLeft(bad) && String(bad.left)).toContain("\"10.0.0.1\" is an IP address")
    expect(Either.isLeft(decodeRun({ network_policy: "egress+everything" }))).toBe(true)
  })

  it("network, network_policy and allow_hosts agree or say why not", () => {
    expect(requestedNetwork({})).toEqual({ policy: "off", allowHosts: null })
    expect(requestedNetwork({ network: true })).toEqual({ policy: "egress", allowHosts: null })
    expect(requestedNetwork({ network: true, network_policy: "egress+published-ports" }))
      .toEqual({ policy: "egress+published-ports", allowHosts: null })
    expect(requestedNetwork({ network_policy: "egress", allow_hosts: ["a.test", "a.test"] }))
      .toEqual({ policy: "egress", allowHosts: ["a.test"] })
    expect(requestedNetwork({ network: true, network_policy: "off" })).toMatchObject({ problem: expect.stringMatching(/disagrees/) })
    expect(requestedNetwork({ network: false, network_policy: "egress" })).toMatchObject({ problem: expect.stringMatching(/disagrees/) })
    expect(requestedNetwork({ allow_hosts: ["a.test"] })).toMatchObject({ problem: expect.stringMatching(/^allow_hosts: needs/) })
  })

  it("a wildcard matches names below it, not the name itself", () => {
    const list = ["github.com", "*.npmjs.org"]
    expect(hostAllowed("github.com", list)).toBe(true)
    expect(hostAllowed("api.github.com", list)).toBe(false)
    expect(hostAllowed("registry.npmjs.org", list)).toBe(true)
    expect(hostAllowed("a.b.npmjs.org", list)).toBe(true)
    expect(hostAllowed("npmjs.org", list)).toBe(false)
    expect(hostAllowed("evilnpmjs.org", list)).toBe(false)
    expect(hostAllowed("github.com.evil", list)).toBe(false)
  })

  it("the operator's cap covers an entry only when it allows every name the entry does", () => {
    const cap = ["github.com", "*.npmjs.org"]
    expect(patternCovered("github.com", cap)).toBe(true)
    expect(patternCovered("registry.npmjs.org", cap)).toBe(true)
    expect(patternCovered("*.npmjs.org", cap)).toBe(true)
    expect(patternCovered("*.x.npmjs.org", cap)).toBe(true)
    expect(patternCovered("npmjs.org", cap)).toBe(false)
    expect(patternCovered("*.github.com", cap)).toBe(false)
    expect(patternCovered("gitlab.com", cap)).toBe(false)
    expect(parseAllowHosts(" github.com, *.npmjs.org ,,")).toEqual(["github.com", "*.npmjs.org"])
    expect(parseAllowHosts("")).toEqual([])
    expect(parseAllowHosts("github.com,1.2.3.4")).toMatch(/"1.2.3.4" is an IP address/)
  })

  it("QEMU gets restrict=on and the proxy command, the guest pyro.net=proxy", () => {
    expect(kernelCommandLine({ tscKhz: undefined, network: true, allowProxy: "x" }).split(" ")).toContain("pyro.net=proxy")
    const args = qemuArgs({
      name: "t",
      accel: "tcg",
      vcpus: 1,
      memMib: 128,
      kernel: "k",
      initrd: "i",
      rootImage: "r",
      scratchImage: "s",
      channelSocket: "c",
      qmpSocket: "q",
      consoleLog: "l",
      network: true,
      allowProxy: "'sh' '/a,b/allowProxy.sh'",
      tscKhz: undefined
    })
    expect(args).toContain(
      "user,id=net0,ipv6=off,restrict=on,guestfwd=tcp:10.0.2.100:3128-cmd:'sh' '/a,,b/allowProxy.sh'"
    )
  })
})

/** A ClientHello record: client_version, random, session id, cipher suites, compression, then `extensions`. */
const clientHello = (extensions: Buffer | undefined) => {
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7),
    Buffer.from([0]),
    Buffer.from([0, 2, 0x13, 0x01]),
    Buffer.from([1, 0]),
    ...(extensions ? [u16(extensions.length), extensions] : [])
  ])
  const handshake = Buffer.concat([Buffer.from([1, body.length >> 16, (body.length >> 8) & 255, body.length & 255]), body])
  return Buffer.concat([Buffer.from([0x16, 3, 1]), u16(handshake.length), handshake])
}
const u16 = (n: number) => Buffer.from([n >> 8, n & 255])
const extension = (type: number, data: Buffer) => Buffer.concat([u16(type), u16(data.length), data])
const serverName = (...names: Array<string>) => {
  const list = Buffer.concat(names.map((n) => Buffer.concat([Buffer.from([0]), u16(n.length), Buffer.from(n)])))
  return extension(0, Buffer.concat([u16(list.length), list]))
}

describe("ClientHello SNI", () => {
  it("finds the server name among other extensions", () => {
    const hello = clientHello(Buffer.concat([extension(0x2b, Buffer.from([2, 3, 4])), serverName("allowed.test"), extension(10, Buffer.alloc(4))]))
    expect(parseClientHelloSni(hello)).toEqual({ _tag: "Hello", sni: "allowed.test" })
  })

  it("reports no name when there is none, and waits for the rest of a hello cut short", () => {
    expect(parseClientHelloSni(clientHello(extension(10, Buffer.alloc(2))))).toEqual({ _tag: "Hello", sni: null })
    expect(parseClientHelloSni(clientHello(undefined))).toEqual({ _tag: "Hello", sni: null })
    const hello = clientHello(serverName("allowed.test"))
    for (const cut of [1, 3, 5, 9, hello.length - 1]) {
      expect(parseClientHelloSni(hello.subarray(0, cut))).toEqual({ _tag: "Incomplete" })
    }
    expect(parseClientHelloSni(Buffer.alloc(0))).toEqual({ _tag: "Incomplete" })
  })

  it("reads a hello split across two records", () => {
    const hello = clientHello(serverName("allowed.test"))
    const handshake = hello.subarray(5)
    const split = Buffer.concat([
      Buffer.from([0x16, 3, 1]),
      u16(10),
      handshake.subarray(0, 10),
      Buffer.from([0x16, 3, 1]),
      u16(handshake.length - 10),
      handshake.subarray(10)
    ])
    expect(parseClientHelloSni(split)).toEqual({ _tag: "Hello", sni: "allowed.test" })
  })

  it("says what is wrong with a malformed one, and bounds its length", () => {
    expect(parseClientHelloSni(Buffer.from("GET / HTTP/1.1\r\n"))).toEqual({ _tag: "NotTls" })
    expect(parseClientHelloSni(clientHello(Buffer.concat([serverName("a.test"), serverName("b.test")]))))
      .toMatchObject({ _tag: "Malformed", why: "two server_name extensions" })
    expect(parseClientHelloSni(clientHello(serverName("a.test", "b.test")))).toMatchObject({ _tag: "Malformed", why: "two host names" })
    const lying = clientHello(serverName("a.test"))
    lying.writeUInt16BE(0xffff, lying.length - serverName("a.test").length + 2) // an extension longer than what holds it
    expect(parseClientHelloSni(lying)._tag).toBe("Malformed")
    const huge = clientHello(extension(21, Buffer.alloc(MAX_CLIENT_HELLO_BYTES)))
    expect(parseClientHelloSni(huge)).toMatchObject({ _tag: "Malformed", why: expect.stringMatching(/longer than/) })
    const app = clientHello(serverName("a.test"))
    app[5] = 2 // a ServerHello
    expect(parseClientHelloSni(app)).toMatchObject({ _tag: "Malformed" })
  })
})
