/**
 * The syntax of an allow_hosts entry, with no dependencies: the contract's
 * schema, the operator's PYRO_ALLOW_HOSTS and the guest's proxy
 * (src/vm/network/allowProxy.ts, bundled on its own) all check the same way.
 *
 * An entry is a lowercase DNS name (`github.com`) or a wildcard
 * `*.npmjs.org`, which matches every name below it (`registry.npmjs.org`,
 * `a.b.npmjs.org`) but not `npmjs.org` itself. No IP literals, no ports, no
 * trailing dot; at most 253 characters.
 */

export const MAX_HOST_LENGTH = 253

const LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
const NAME = new RegExp(`^(?:${LABEL}\\.)*${LABEL}$`)

/** Why `entry` is not an allow_hosts entry, or undefined when it is one. */
export const hostPatternProblem = (entry: string): string | undefined => {
  if (entry.length === 0) return "is empty"
  if (entry.length > MAX_HOST_LENGTH) return `is longer than ${MAX_HOST_LENGTH} characters`
  if (entry.includes(":")) return "has a port or is an IPv6 address: give a name alone"
  if (entry.endsWith(".")) return "ends with a dot: leave it out"
  if (entry !== entry.toLowerCase()) return "has upper-case letters: names are given in lower case"
  const name = entry.startsWith("*.") ? entry.slice(2) : entry
  if (!NAME.test(name)) {
    return entry.includes("*")
      ? "has a wildcard other than one leading `*.` (as in *.npmjs.org)"
      : "is not a DNS name (letters, digits and hyphens in dot-separated labels)"
  }
  // No top-level name is all digits: this refuses IPv4 literals (and their short forms) as names.
  if (/^[0-9]+$/.test(name.slice(name.lastIndexOf(".") + 1))) return "is an IP address: give a DNS name"
  return undefined
}
