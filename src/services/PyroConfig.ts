/** Where pyro keeps things and the knobs users can turn, read once from the environment. */
import * as Context from "effect/Context"
import type * as Option from "effect/Option"

export type AccelPreference = "auto" | "kvm" | "tcg"

export interface PyroConfigShape {
  /** Downloads, kernels, the agent build, environment images. `$PYRO_CACHE_DIR`, else `$XDG_CACHE_HOME/pyro`. */
  readonly cacheDir: string
  /** VM and workspace records, scratch disks, sockets. `$PYRO_STATE_DIR`, else `$XDG_STATE_HOME/pyro`. */
  readonly stateDir: string
  /** A kernel image to use instead of Debian's cloud kernel (`PYRO_KERNEL`). */
  readonly kernelPath: Option.Option<string>
  /** Modules for that kernel: a directory of `.ko` files or a `lib/modules/<version>` tree (`PYRO_KERNEL_MODULES`). */
  readonly kernelModulesDir: Option.Option<string>
  readonly accel: AccelPreference
  readonly qemuBinary: string
  /** Upper bound on a cold boot, spawn to agent handshake (`PYRO_BOOT_TIMEOUT_SECONDS`, default 60). */
  readonly bootTimeoutMs: number
  /** Bytes of stdout and of stderr a result keeps in memory (`PYRO_MAX_OUTPUT_BYTES`, default 16 MiB). */
  readonly maxOutputBytes: number
  /**
   * Bytes of each output stream a tool caller's result carries, head and tail
   * (`PYRO_OUTPUT_BUDGET_BYTES`, default 32 KiB, at most 512 KiB so that an MCP
   * message stays well inside a client's limit). The CLI's results carry up
   * to `maxOutputBytes`.
   */
  readonly outputBudgetBytes: number
  /** Size of each VM's sparse scratch disk (`PYRO_SCRATCH_MIB`, default 8192). */
  readonly scratchMib: number
  /** VMs that may be active at once, one-shot runs included (`PYRO_MAX_ACTIVE_VMS`, default 4). */
  readonly maxActiveVms: number
  /**
   * Spare VMs to keep of each `vm_run` shape this process runs (`PYRO_SPARES`, default 0, at
   * most MAX_SPARES_PER_SHAPE): restored, attached and warmed VMs in the state directory
   * that any pyro process may claim (src/vm/spares/).
   */
  readonly spares: number
  /** A spare nobody claimed for this long is reaped (`PYRO_SPARE_IDLE_SECONDS`, default 600). */
  readonly spareIdleSeconds: number
  /**
   * Where prebuilt catalog environments are published (`PYRO_REGISTRY`, e.g.
   * oci://registry.example/pyro): `debian:12` is looked for at
   * `<registry>/debian:12` before being built locally.
   */
  readonly registry: Option.Option<string>
  /** Start VMs from templates when possible (`PYRO_COLD_BOOT=1` turns it off). */
  readonly templates: boolean
  /**
   * Directories a tool caller (MCP, SDK) may import from with seed_path and
   * source_path: `PYRO_IMPORT_ROOTS` (colon-separated), else the directory
   * pyro started in unless that is `/`, the home directory or above it. The CLI may
   * import any path.
   */
  readonly importRoots: ReadonlyArray<string>
  /**
   * The operator's allowlist for tool callers' guests (`PYRO_ALLOW_HOSTS`,
   * comma-separated allow_hosts entries; `new Pyro({ allowHosts })`): when
   * set, a tool caller's VM with egress reaches only names it covers. The
   * CLI's own commands are the operator's and are not held to it.
   */
  readonly allowHosts: Option.Option<ReadonlyArray<string>>
  /**
   * The resolver guests' networks use (`PYRO_GUEST_DNS`, an IPv4 address;
   * trusted, it may be private): libslirp's upstream for the guest's DNS and
   * the allowlist proxy's. Default: the host's own, through pasta.
   */
  readonly guestDns: Option.Option<string>
}

export class PyroConfig extends Context.Tag("pyro/PyroConfig")<PyroConfig, PyroConfigShape>() {}
