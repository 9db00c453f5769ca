/** Booting micro VMs. The live layer is QEMU (src/layers/QemuVmm.ts). */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { AccelDecision } from "../vm/accel.js"
import type { BootError, GuestChannelError } from "../vm/errors.js"
import type { VmPaths } from "../vm/vmDir.js"
import type { Hello } from "../vm/protocol/messages.js"
import type { GuestConnection } from "../vm/protocol/mux.js"
import type { ProcessExit } from "../vm/qemu/process.js"
import type { HeadStart } from "../vm/headStart/recipe.js"

export interface BootSpec {
  readonly id: string
  readonly kernel: string
  readonly initrd: string
  readonly rootImage: string
  readonly vcpus: number
  readonly memMib: number
  readonly network: boolean
  /**
   * With network: the guest reaches only these names, through the host's
   * allowlist proxy (src/vm/network/allowProxy.ts), and nothing directly.
   * Absent: every public address.
   */
  readonly allowHosts?: ReadonlyArray<string>
  /**
   * Host channels: independent connections to the agent, each with its own
   * streams, on channel 0's socket and its `channel-N.sock` siblings
   * (`channelSocketPath`). A lost host on one ends only its own commands.
   * Default 1; the agent serves at most 16 (MAX_CHANNEL_PORTS, guest/agent/agent.h).
   */
  readonly channels?: number
  /** Spawn to agent handshake; defaults to the configured boot timeout. */
  readonly timeoutMs?: number
  /**
   * What a template for this VM is made of (see src/vm/template.ts): with it,
   * the VM is restored from a template (made first if need be) unless cold
   * boots are forced; without it, it boots cold.
   */
  readonly template?: {
    readonly environment: string
    /** sha256 of the root image. */
    readonly rootDigest: string
    /** Kernel + initramfs. */
    readonly bootDigest: string
  }
}

/** A booted VM whose agent has answered, before attach. */
export interface RunningVm {
  readonly id: string
  readonly pid: number
  readonly accel: "kvm" | "tcg"
  readonly hello: Hello
  /** The connection made at boot. */
  readonly connection: GuestConnection
  /** Close that connection, leaving the VM running (another may connect to channelSocket). */
  readonly disconnect: Effect.Effect<void>
  readonly channelSocket: string
  /** Spawn to agent handshake. */
  readonly bootMs: number
  /** Restored from a template, or booted cold. */
  readonly start: "restored" | "cold"
  readonly exited: Effect.Effect<ProcessExit>
  /**
   * An ephemeral VM's end, started now: QEMU killed, so that its exit overlaps what the
   * caller does next (the scope's end still waits for it). For a one-shot run whose command is over.
   */
  readonly kill: Effect.Effect<void>
  /** Give the VM its scratch disk, clock, entropy and hostname, and switch into its root. */
  readonly attach: Effect.Effect<void, BootError>
}

export class Vmm extends Context.Tag("pyro/Vmm")<Vmm, {
  readonly accel: AccelDecision
  /** The real path of the QEMU binary (undefined when missing): only a process running it is ever killed as a VM's. */
  readonly vmmExecutable: string | undefined
  /** Why this host cannot run any guest at all (no VMM binary), if it cannot. */
  readonly unavailable: Effect.Effect<Option.Option<string>>
  /**
   * Boot a VM that lives as long as the scope: closing it (success, failure,
   * interruption) kills the VM and deletes its files.
   */
  readonly bootEphemeral: (spec: BootSpec, options?: EphemeralOptions) => Effect.Effect<RunningVm, BootError, Scope.Scope>
  /**
   * Boot and attach a VM that outlives this process, in a directory the caller
   * owns; it runs until killed (see DetachedVm).
   */
  readonly bootDetached: (
    spec: BootSpec,
    paths: VmPaths,
    options: DetachedOptions
  ) => Effect.Effect<DetachedVm, BootError>
  /**
   * Make (or find) the template for a VM of this spec; "cold" if templates are off or it cannot be made.
   * `kind` defaults to what a fresh VM (vm_run, vm_create) starts from.
   */
  readonly prepareTemplate: (spec: BootSpec, kind?: TemplateKind) => Effect.Effect<TemplateStatus>
  /** Whether a VM of this spec would start warm, and if not why; builds nothing. */
  readonly templateReport: (spec: BootSpec, kind?: TemplateKind) => Effect.Effect<TemplateReport>
  /** A connection to a running VM's agent, for as long as the scope. */
  readonly connect: (channelSocket: string, timeoutMs: number) => Effect.Effect<GuestConnection, GuestChannelError, Scope.Scope>
}>() {}

/**
 * Which template a VM starts from: one taken after attach, whose scratch disk
 * the clone copies (fresh VMs; workspaces' disks have a journal), or one taken
 * before attach (restarts onto a scratch disk that already holds files).
 */
export type TemplateKind =
  | { readonly stage: "attached"; readonly journal: boolean }
  | { readonly stage: "boot" }

export const FRESH_VM_TEMPLATE: TemplateKind = { stage: "attached", journal: false }
export const WORKSPACE_TEMPLATE: TemplateKind = { stage: "attached", journal: true }

export interface EphemeralOptions {
  /** A simple `pyro run`'s head start (src/vm/headStart/recipe.ts): its QEMU adopted if it is this VM's, and where to record how this VM started. */
  readonly headStart?: HeadStart
}

export interface DetachedOptions {
  /** Make a fresh scratch disk; otherwise boot on the one already there (its files kept). */
  readonly formatScratch: boolean
  /** A journal lets a scratch disk survive QEMU being killed (workspaces). */
  readonly journaledScratch: boolean
  /** QEMU dies with this process (VMs) or outlives it (workspaces). */
  readonly dieWithParent: boolean
  /**
   * Start from this file: a running VM's device state (saveSnapshot,
   * src/vm/qemu/snapshot.ts), with `paths.ram` a copy of its RAM file and the
   * disk a copy of its disk, all from one instant: a fork. No template, no
   * cold boot; the VM gets only its own clock, entropy and hostname.
   */
  readonly resumeFrom?: string
  /**
   * Run `true` once after attach, over the boot connection: under TCG a VM's first
   * command pays for translating the exec path (spare VMs pay it ahead of their run).
   */
  readonly warmUp?: boolean
}

export interface DetachedVm {
  /** QEMU's pid (and process group) and start time, which tell it from a recycled pid. */
  readonly pid: number
  readonly startTime: number
  readonly bootMs: number
  readonly accel: "kvm" | "tcg"
  readonly start: "restored" | "cold"
}

export interface TemplateStatus {
  readonly state: "warm" | "cold"
  readonly key: string | undefined
  readonly dir: string | undefined
  /** Why it is cold: templates off, no template inputs, or what failed while making one. */
  readonly reason: string | undefined
  /** A template was made by this call. */
  readonly built: boolean
}

export interface TemplateReport {
  /** warm: a template is ready; stale: templates exist for other inputs; cold: none (or templates are off). */
  readonly state: "warm" | "stale" | "cold"
  readonly key: string | undefined
  readonly reasons: ReadonlyArray<string>
}
