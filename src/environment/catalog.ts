/** The environments pyro knows by name. */
export interface CatalogEntry {
  readonly name: string
  readonly version: string
  readonly description: string
  readonly default_packages: ReadonlyArray<string>
  readonly distribution: string
  readonly distribution_version: string
  readonly platform: string
  readonly recipe: { readonly kind: "busybox" }
}

export const CATALOG: ReadonlyArray<CatalogEntry> = [
  {
    name: "tiny",
    version: "1.0.0",
    description: "Tiny BusyBox environment for tests and quick starts (Debian's busybox-static).",
    default_packages: ["busybox-static"],
    distribution: "debian",
    distribution_version: "12",
    platform: "linux-x86_64",
    recipe: { kind: "busybox" }
  }
]

export const findEntry = (name: string) => CATALOG.find((e) => e.name === name)

/** A directory name for an environment ("debian:12" -> "debian_12"). */
export const cacheName = (name: string) => name.replace(/[^A-Za-z0-9._-]/g, "_")
