/**
 * Finding, making and judging the template a VM starts from (what a template
 * is and its files: template.ts; the save and restore steps: qemu/snapshot.ts).
 *
 * A module the Vmm layer builds, not a layer of its own: making a template
 * boots a VM with the Vmm's own boot step, which it is handed.
 */
import type * as Scope from "effect/Scope"
import * as Effect from "effect/Effect"
import { createHash, randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import { installDirectory } from "../host/files.js"
import { which } from "../host/which.js"
import { report } from "../services/Progress.js"
import { PyroConfig } from "../services/PyroConfig.js"
import {
  type BootSpec,
  FRESH_VM_TEMPLATE,
  type RunningVm,
  type TemplateKind,
  type TemplateReport,
  type TemplateStatus
} from "../services/Vmm.js"
import { BootError, killedFromOutside } from "./errors.js"
import { runCommand } from "./execCommand.js"
import { connectQmp } from "./qemu/qmp.js"
import { saveSnapshot } from "./qemu/snapshot.js"
import { copyScratch, createScratch } from "./scratch.js"
import {
  encodeTemplateManifest,
  qemuIdentity,
  readTemplate,
  recentTemplateFailure,
  recordTemplateFailure,
  staleBecause,
  TEMPLATE_FORMAT,
  TEMPLATE_VM_PREFIX,
  type TemplateInputs,
  templateKey,
  type TemplatePaths,
  templatePaths,
  templatesFor,
  templatesRoot
} from "./template.js"
import { makeEphemeralDir, type VmPaths } from "./vmDir.js"

/** QEMU answers a QMP command at once; the migration itself has SAVE_TIMEOUT_MS. */
const QMP_TIMEOUT_MS = 10_000
const SAVE_TIMEOUT_MS = 60_000
/**
 * Run once in an attached template before it is saved, so that its clones find
 * the shell, libc and the exec path already in the guest's page cache, and no
 * dirty page: otherwise every clone writes the template's back a few seconds
 * after its restore (guest ftrace), paying for it in CPU, copied pages and
 * translated code (~1 MiB more per idle VM, measured).
 */
const WARM_UP_COMMAND = ["sh", "-c", "sync"] as const

/**
 * Boot an ephemeral VM in `paths` up to the agent's handshake, its RAM in the
 * file `ram` so that it can be saved; `format`: make it a fresh scratch disk.
 */
export type BootForTemplate<R> = (
  spec: BootSpec,
  paths: VmPaths,
  format: { readonly journal: boolean } | undefined,
  ram: string
) => Effect.Effect<RunningVm, BootError, R | Scope.Scope>

/** A template to restore from (undefined: boot cold), and what to tell about it. */
export interface FoundTemplate {
  readonly paths: TemplatePaths | undefined
  readonly status: TemplateStatus
}

/**
 * Whose fault a failed restore is: nobody's (QEMU killed from outside, e.g.
 * shutdown), the VM's own files (its scratch copy: a full or read-only state
 * directory), which leaves the template to other starts, or the template's.
 */
export const restoreFailureBlame = (e: BootError): "outside" | "vm" | "template" =>
  killedFromOutside(e) ? "outside" : e.stage === "Prepare" ? "vm" : "template"

export const makeTemplateCache = <R>(options: { readonly accel: "kvm" | "tcg"; readonly bootForTemplate: BootForTemplate<R> }) =>
  Effect.gen(function*() {
    const config = yield* PyroConfig
    const qemu = qemuIdentity(which(config.qemuBinary))

    const templateInputs = (spec: BootSpec, kind: TemplateKind): TemplateInputs | undefined =>
      spec.template && {
        format: TEMPLATE_FORMAT,
        environment: spec.template.environment,
        root_digest: spec.template.rootDigest,
        boot_digest: spec.template.bootDigest,
        vcpus: spec.vcpus,
        mem_mib: spec.memMib,
        scratch_mib: config.scratchMib,
        stage: kind.stage,
        scratch_journal: kind.stage === "attached" && kind.journal,
        network: spec.network,
        ...(spec.network && spec.allowHosts ? { network_proxy: true as const } : {}),
        ...((spec.channels ?? 1) > 1 ? { channels: spec.channels } : {}),
        accel: options.accel,
        qemu
      }

    /**
     * Boot a VM in `aside` to the template's stage (the agent's handshake, or
     * attach plus one warm-up command), pause it, and save its device state
     * (and, once attached, its scratch disk) there.
     */
    const makeTemplate = (spec: BootSpec, inputs: TemplateInputs, aside: string) =>
      Effect.scoped(Effect.gen(function*() {
        const tpl = templatePaths(aside)
        const id = `${TEMPLATE_VM_PREFIX}${randomBytes(5).toString("hex")}`
        const paths = yield* makeEphemeralDir(config.stateDir, id, spec.channels)
        const attached = inputs.stage === "attached"
        if (!attached) yield* createScratch(paths.scratch, config.scratchMib)
        const vm = yield* options.bootForTemplate(
          { ...spec, id },
          paths,
          attached ? { journal: inputs.scratch_journal } : undefined,
          tpl.ram
        )
        if (attached) {
          yield* vm.attach
          // Best effort: an image without sh still makes a template, only a less warm one.
          yield* runCommand(vm.connection, { command: WARM_UP_COMMAND, cwd: "/", timeoutSeconds: 30, maxOutputBytes: 4096 }).pipe(
            Effect.ignore
          )
        }
        // Saved while no host is connected: clones wait for theirs.
        yield* vm.disconnect
        yield* saveSnapshot(yield* connectQmp(paths.qmpSocket, QMP_TIMEOUT_MS), tpl.state, SAVE_TIMEOUT_MS)
        // Stopped, so the disk is what the saved RAM has mounted.
        if (attached) yield* copyScratch(paths.scratch, tpl.scratch)
        // Failures here are errors (the VM then boots cold), never defects.
        yield* Effect.try(() => {
          const state = Fs.readFileSync(tpl.state)
          for (const file of attached ? [tpl.ram, tpl.state, tpl.scratch] : [tpl.ram, tpl.state]) Fs.chmodSync(file, 0o444)
          Fs.writeFileSync(tpl.manifest, encodeTemplateManifest({
            inputs,
            created_at: new Date().toISOString(),
            ram_file: "ram",
            state_file: "state",
            ...(attached ? { scratch_file: "scratch" as const } : {}),
            state_bytes: state.byteLength,
            state_sha256: createHash("sha256").update(state).digest("hex"),
            boot_ms: vm.bootMs
          }))
        })
      })).pipe(Effect.mapError((e) =>
        // How QEMU ended goes along: a kill from outside is no reason to give up on the template.
        new BootError({ stage: "Template", detail: e.message, ...(e instanceof BootError && e.vmmExit ? { vmmExit: e.vmmExit } : {}) })
      ))

    // One template build per key at a time in this process; installDirectory keeps processes apart.
    const templateLocks = new Map<string, Effect.Semaphore>()
    const lockTemplate = (key: string) => {
      let lock = templateLocks.get(key)
      if (!lock) templateLocks.set(key, (lock = Effect.unsafeMakeSemaphore(1)))
      return lock.withPermits(1)
    }

    /** The template for a VM of this spec and kind, made first if need be; none (cold) if it cannot be. */
    const ensure = (spec: BootSpec, kind: TemplateKind) =>
      Effect.gen(function*() {
        const cold = (reason: string): FoundTemplate => ({
          paths: undefined,
          status: { state: "cold", key: undefined, dir: undefined, reason, built: false }
        })
        if (!config.templates) return cold("templates are off (PYRO_COLD_BOOT)")
        const inputs = templateInputs(spec, kind)
        if (!inputs) return cold("no template inputs for this VM")
        const key = templateKey(inputs)
        const dir = `${templatesRoot(config.cacheDir)}/${key}`
        return yield* lockTemplate(key)(Effect.gen(function*() {
          const found = readTemplate(dir)
          if (found) return { paths: found.paths, status: { state: "warm", key, dir, reason: undefined, built: false } } satisfies FoundTemplate
          // A template that could not be made just now is not tried again at every start.
          const failedBefore = recentTemplateFailure(dir, Date.now())
          if (failedBefore) return cold(`could not make a template ${failedBefore.ago}: ${failedBefore.reason}`)
          yield* report({ scope: "boot", phase: "template", fields: { environment: inputs.environment, key } })
          yield* Effect.ignore(Effect.try(() => Fs.rmSync(dir, { recursive: true, force: true })))
          const made = yield* Effect.either(installDirectory(dir, (aside) => makeTemplate(spec, inputs, aside)))
          const ready = readTemplate(dir)
          if (made._tag === "Left" || !ready) {
            const killed = made._tag === "Left" && made.left instanceof BootError && killedFromOutside(made.left)
            const reason = made._tag === "Left" ? made.left.message.split("\n")[0]! : "incomplete after install"
            yield* report({ scope: "boot", phase: "template-failed", fields: { environment: inputs.environment, reason: JSON.stringify(reason) } })
            // Not for a start cut short from outside (shutdown, Ctrl-C), which says nothing about the template.
            if (!killed) recordTemplateFailure(dir, reason)
            return cold(`could not make a template: ${reason}`)
          }
          return { paths: ready.paths, status: { state: "warm", key, dir, reason: undefined, built: true } } satisfies FoundTemplate
        }))
      })

    /** Whether a VM of this spec would start warm, and if not why; builds nothing. */
    const templateReport = (spec: BootSpec, kind: TemplateKind = FRESH_VM_TEMPLATE) =>
      Effect.sync((): TemplateReport => {
        if (!config.templates) return { state: "cold", key: undefined, reasons: ["templates are off (PYRO_COLD_BOOT)"] }
        const inputs = templateInputs(spec, kind)
        if (!inputs) return { state: "cold", key: undefined, reasons: ["no template inputs"] }
        const key = templateKey(inputs)
        if (readTemplate(`${templatesRoot(config.cacheDir)}/${key}`)) return { state: "warm", key, reasons: [] }
        // Only templates of the same kind: a workspace template is not a stale VM template.
        const others = templatesFor(config.cacheDir, inputs.environment).filter((o) =>
          o.manifest.inputs.stage === inputs.stage && o.manifest.inputs.scratch_journal === inputs.scratch_journal
        )
        if (others.length > 0) {
          return { state: "stale", key, reasons: [...new Set(others.flatMap((o) => staleBecause(o.manifest.inputs, inputs)))] }
        }
        return { state: "cold", key, reasons: ["no template yet: made on first use, or now with `pyro prepare`"] }
      })

    /** Remove a template a restore failed from: the next start makes a new one. */
    const discard = (template: TemplatePaths) => Effect.sync(() => Fs.rmSync(template.dir, { recursive: true, force: true }))

    return { ensure, report: templateReport, discard }
  })
