/**
 * The guest's network, host side. A VM with `network` reaches public
 * addresses and DNS, and never the host (its loopback, its own addresses,
 * slirp's 10.0.2.2), link-local (169.254.169.254) or private networks.
 *
 * How: QEMU keeps its user networking (libslirp: the guest sees 10.0.2.15,
 * gateway 10.0.2.2, DNS 10.0.2.3), but runs in a fresh user + network + mount
 * namespace N (netjail.sh). slirp's sockets are N's, and N's only way out is
 * pasta (Debian's passt), which carries N's traffic to the host's sockets.
 * Policy rules in N, applied before QEMU starts, refuse every non-public
 * range (src/host/addresses.ts) and each of the host's own addresses, so
 * whatever the guest makes slirp connect to, N's kernel refuses it before
 * pasta sees it; N's own loopback (slirp's 10.0.2.2) is refused too. DNS is
 * the one exception: UDP/53 to pasta's forwarder, which asks the host's
 * resolver. A name that resolves to a private address gains nothing: the
 * check is on the address connected to.
 *
 * With an allowlist (allow_hosts), the same namespace, but libslirp routes
 * nothing and answers no DNS (restrict=on): the guest's one way out is the
 * allowlist proxy (allowProxy.ts), which libslirp starts in N for each
 * connection to 10.0.2.100:3128; N's rules hold for its connections too.
 *
 * The resolver: the host's, through pasta's forwarder, unless the operator
 * names one (PYRO_GUEST_DNS), which N's rules then let through on UDP/53.
 *
 * Why this shape (measured in docs/architecture.md): pasta alone (-netdev
 * stream) cannot filter destinations and was slower here; slirp's restrict=on
 * allows no public egress; nftables would need root. Rules rather than routes,
 * because pasta copies the host's connected routes into N, which would be more
 * specific than a refusal route. Everything runs without root when user
 * namespaces and /dev/net/tun are available, and adds ~0.1 s to a start, done
 * while the VM boots.
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { hostAddresses, IPV4_MAPPED, NON_PUBLIC_IPV4, NON_PUBLIC_IPV6 } from "../../host/addresses.js"
import { packageRoot } from "../../host/packageRoot.js"
import { BootError } from "../errors.js"

export interface EgressOptions {
  /** The names the proxy allows (egress.ts writes them to DIR/allow_hosts); absent: no proxy. */
  readonly allowHosts?: ReadonlyArray<string> | undefined
  /** The resolver for N (PYRO_GUEST_DNS); default pasta's forwarder. */
  readonly dns?: string | undefined
}

/** Where N's resolver is: pasta's DNS forwarder (inside a refused range; only UDP/53 to it passes). */
export const EGRESS_DNS = "169.254.1.53"
/** How long pasta may take to give N its way out once QEMU has started. */
const EGRESS_TIMEOUT_MS = 10_000

export const netjailScript = () => Path.join(packageRoot(), "src", "vm", "network", "netjail.sh")
const allowProxyScript = () => Path.join(packageRoot(), "src", "vm", "network", "allowProxy.sh")
/** The bundled proxy (scripts/build.mjs). */
const allowProxyBundle = () => Path.join(packageRoot(), "dist", "allowProxy.cjs")

/** A word g_shell_parse_argv reads back as itself: single-quoted, a quote inside closed, escaped and reopened. */
const shellWord = (word: string) => `'${word.replaceAll("'", `'\''`)}'`

/** The command libslirp runs per guest connection to the proxy (QemuSpec.allowProxy). */
export const allowProxyCommand = (dir: string) =>
  ["sh", allowProxyScript(), process.execPath, allowProxyBundle(), dir].map(shellWord).join(" ")

/** The VM's network files, inside its directory. */
export const egressDir = (vmDir: string) => Path.join(vmDir, "net")

/** The IPv4 broadcast address of an interface address. */
const broadcastOf = (address: string, netmask: string) =>
  address.split(".").map((octet, i) => (Number(octet) | (~Number(netmask.split(".")[i]) & 255)) & 255).join(".")

/** Every address this host answers for: its interfaces' addresses and their broadcast addresses. */
const ownAddresses = (): Array<string> => {
  const out = new Set(hostAddresses())
  for (const list of Object.values(Os.networkInterfaces())) {
    for (const i of list ?? []) if (i.family === "IPv4") out.add(broadcastOf(i.address, i.netmask))
  }
  return [...out]
}

const cidr = (address: string) => (address.includes("/") ? address : `${address}/${address.includes(":") ? 128 : 32}`)

/**
 * `ip -batch` rules for N, one text per family; `dns`: the resolver N's UDP/53
 * may reach. `openLoopback` (allowlist mode only): N's own 127.0.0.1 is let
 * through, because libslirp connects each guestfwd command to itself over a
 * TCP pair on 127.0.0.1; nothing else listens there, the guest cannot reach
 * it (restrict=on), and the proxy refuses non-public addresses itself.
 */
export const egressRules = (own: ReadonlyArray<string> = ownAddresses(), dns: string = EGRESS_DNS, openLoopback = false) => {
  const refuse = (prefix: string) => `rule add pref 100 iif lo to ${prefix} unreachable`
  // The local table's lookup moves after the refusals, so N's own loopback is refused too.
  const localLast = ["rule del pref 0", "rule add pref 200 lookup local"]
  const v4 = [
    `rule add pref 50 iif lo to ${dns} ipproto udp dport 53 lookup main`,
    ...(openLoopback ? ["rule add pref 60 iif lo to 127.0.0.1/32 lookup local"] : []),
    ...NON_PUBLIC_IPV4.map(([a, p]) => refuse(`${a}/${p}`)),
    ...own.filter((a) => !a.includes(":")).map((a) => refuse(cidr(a))),
    ...localLast
  ]
  const v6 = [
    ...[...NON_PUBLIC_IPV6, IPV4_MAPPED].map(([a, p]) => refuse(`${a}/${p}`)),
    ...own.filter((a) => a.includes(":")).map((a) => refuse(cidr(a.replace(/%.*$/, "")))),
    ...localLast
  ]
  return { rules4: `${[...new Set(v4)].join("\n")}\n`, rules6: `${[...new Set(v6)].join("\n")}\n` }
}

/** The host's IPv4 default gateway, from /proc/net/route, or "" without one. */
export const hostGateway = (): string => {
  try {
    for (const line of Fs.readFileSync("/proc/net/route", "utf8").split("\n").slice(1)) {
      const [, destination, gateway, , , , , mask] = line.trim().split(/\s+/)
      if (destination === "00000000" && mask === "00000000" && gateway && gateway !== "00000000") {
        // The address as a little-endian hex word: its bytes, last first.
        return (gateway.match(/../g) ?? []).map((byte) => parseInt(byte, 16)).reverse().join(".")
      }
    }
  } catch {
    // no IPv4 routing table: no gateway
  }
  return ""
}

/**
 * Write what netjail.sh applies (the rules, N's resolv.conf, the forwarder and
 * the gateway) and, with an allowlist, what the proxy reads.
 */
export const prepareEgress = (dir: string, options: EgressOptions = {}) =>
  Effect.try({
    try: () => {
      Fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
      const dns = options.dns ?? EGRESS_DNS
      const { rules4, rules6 } = egressRules(ownAddresses(), dns, options.allowHosts !== undefined)
      Fs.writeFileSync(Path.join(dir, "rules4"), rules4, { mode: 0o600 })
      Fs.writeFileSync(Path.join(dir, "rules6"), rules6, { mode: 0o600 })
      Fs.writeFileSync(Path.join(dir, "resolv.conf"), `nameserver ${dns}\n`, { mode: 0o644 })
      if (options.allowHosts) {
        Fs.writeFileSync(Path.join(dir, "allow_hosts"), options.allowHosts.map((h) => `${h}\n`).join(""), { mode: 0o600 })
      }
      Fs.writeFileSync(Path.join(dir, "dns"), EGRESS_DNS, { mode: 0o600 })
      Fs.writeFileSync(Path.join(dir, "gateway"), hostGateway(), { mode: 0o600 })
    },
    catch: (e) => new BootError({ stage: "Prepare", detail: `guest network: ${e instanceof Error ? e.message : String(e)}` })
  })

/** The argv that runs `argv` (QEMU) in the jail. */
export const jailed = (dir: string, argv: ReadonlyArray<string>): ReadonlyArray<string> => ["sh", netjailScript(), dir, ...argv]

/** Wait until N has its way out (or say why it never will). */
export const awaitEgress = (dir: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + EGRESS_TIMEOUT_MS
    for (;;) {
      if (Fs.existsSync(Path.join(dir, "net-ready"))) return
      let failed: string | undefined
      try {
        failed = Fs.readFileSync(Path.join(dir, "net-failed"), "utf8").trim()
      } catch {
        failed = undefined
      }
      if (failed !== undefined || Date.now() > deadline) {
        return yield* new BootError({
          stage: "Prepare",
          detail: `guest network: ${failed ?? `not ready within ${EGRESS_TIMEOUT_MS / 1000}s`} ` +
            "(it needs Debian's passt, user namespaces, and /dev/net/tun open to this user)"
        })
      }
      yield* Effect.sleep("5 millis")
    }
  })
