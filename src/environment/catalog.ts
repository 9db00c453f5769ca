/**
 * The environments pyro knows by name: the original's curated Debian 12 set,
 * built locally from Debian's archive with mmdebstrap, and a tiny BusyBox
 * environment for tests and quick starts.
 */
export type Recipe =
  | { readonly kind: "busybox" }
  | {
    readonly kind: "debian"
    readonly suite: "bookworm"
    /** Installed on top of mmdebstrap's minbase variant. */
    readonly packages: ReadonlyArray<string>
  }

export interface CatalogEntry {
  readonly name: string
  /** Bumped whenever the recipe changes, so a cached build is never mistaken for the new one. */
  readonly version: string
  readonly description: string
  readonly default_packages: ReadonlyArray<string>
  readonly distribution: string
  readonly distribution_version: string
  readonly platform: string
  readonly recipe: Recipe
}

/** What every Debian environment has on top of minbase. */
const DEBIAN_BASE = ["bash", "ca-certificates", "coreutils", "findutils", "grep", "gzip", "less", "procps", "sed", "tar"]
const AGENT_TOOLS = [
  "git",
  "curl",
  "diffutils",
  "file",
  "jq",
  "openssh-client",
  "patch",
  "python3",
  "ripgrep",
  "unzip",
  "xz-utils"
]
const BUILD_TOOLS = ["build-essential", "make", "cmake", "pkg-config", "python3-dev", "python3-venv", "python3-pip"]

const debian = (
  name: string,
  description: string,
  packages: ReadonlyArray<string>
): CatalogEntry => ({
  name,
  version: "1.0.0",
  description,
  default_packages: packages,
  distribution: "debian",
  distribution_version: "12",
  platform: "linux-x86_64",
  recipe: { kind: "debian", suite: "bookworm", packages }
})

export const CATALOG: ReadonlyArray<CatalogEntry> = [
  debian(
    "debian:12",
    "Debian 12 environment with Git preinstalled for common agent workflows.",
    [...DEBIAN_BASE, ...AGENT_TOOLS]
  ),
  debian(
    "debian:12-base",
    "Minimal Debian 12 environment for shell and core Unix tooling.",
    DEBIAN_BASE
  ),
  debian(
    "debian:12-build",
    "Debian 12 environment with Git and common build tools preinstalled.",
    [...DEBIAN_BASE, ...AGENT_TOOLS, ...BUILD_TOOLS]
  ),
  {
    name: "tiny",
    version: "1.1.0",
    description: "Tiny BusyBox environment for tests and quick starts (Debian's busybox-static).",
    default_packages: ["busybox-static"],
    distribution: "debian",
    distribution_version: "12",
    platform: "linux-x86_64",
    recipe: { kind: "busybox" }
  }
]

export const DEFAULT_ENVIRONMENT = "debian:12"

export const findEntry = (name: string) => CATALOG.find((e) => e.name === name)

/** A directory name for an environment ("debian:12" -> "debian_12"). */
export const cacheName = (name: string) => name.replace(/[^A-Za-z0-9._-]/g, "_")
