/**
 * Matching names against allow_hosts entries (syntax: src/contract/hostPattern.ts).
 * Pure and dependency-free: the guest's proxy bundles it.
 */

/** Whether `host` (already lowercase, no trailing dot) is one `pattern` allows. */
export const patternMatches = (pattern: string, host: string): boolean =>
  pattern.startsWith("*.") ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern

export const hostAllowed = (host: string, patterns: ReadonlyArray<string>): boolean =>
  patterns.some((pattern) => patternMatches(pattern, host))

/**
 * Whether every name `entry` allows is one `cap` allows too: a name, if some
 * cap entry matches it; a wildcard `*.x`, only under a wildcard of the cap
 * that matches `x` or is `*.x` itself.
 */
export const patternCovered = (entry: string, cap: ReadonlyArray<string>): boolean =>
  entry.startsWith("*.")
    ? cap.some((c) => c === entry || (c.startsWith("*.") && patternMatches(c, entry.slice(2))))
    : hostAllowed(entry, cap)

/** A host as the guest wrote it, in the form entries are matched against: lowercase, one trailing dot dropped. */
export const normalizeHost = (host: string): string => host.toLowerCase().replace(/\.$/, "")
