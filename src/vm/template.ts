/**
 * Templates: a booted VM, paused, with its RAM in a file and its device state
 * saved beside it. Clones map that RAM privately (copy-on-write) and load the
 * device state: an agent ready in a few hundredths of a second instead of a
 * cold boot, for a fraction of the memory.
 *
 * Two stages. An *attached* template (what fresh VMs use) is taken after
 * attach and one warm-up command, with its scratch disk saved beside it: a
 * clone gets a copy of that disk and only needs REFRESH (clock, entropy,
 * hostname), skipping attach's mounts and the first command's page faults,
 * which TCG is slow to translate. A *boot* template is taken before attach,
 * for VMs whose scratch disk already holds data (restarts), which attach.
 *
 * A template is only valid for the exact inputs it was made from; its key is
 * a digest of all of them, so any change (environment, kernel, agent, sizing,
 * accelerator, QEMU) selects a different template and the old one goes stale.
 *
 *   <cache>/templates/<key>/ ram, state, scratch (attached only; all read-only),
 *                            template.json (written last)
 */
import * as Schema from "effect/Schema"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"

/**
 * Bumped when the way templates are made or restored changes. 3: `tsc=reliable`
 * and `pit=off` (a template's saved PIT state cannot load into a machine without one).
 * 4: the idle guest's periodic wake-ups turned off on the kernel command line.
 */
export const TEMPLATE_FORMAT = 4

/** Ids of the VMs being made into templates: internal, they hold no active-VM slot (no run claims them). */
export const TEMPLATE_VM_PREFIX = "tpl"

export const TemplateInputs = Schema.Struct({
  format: Schema.Number,
  environment: Schema.String,
  /** sha256 of the environment's root image. */
  root_digest: Schema.String,
  /** Kernel + initramfs (agent included). */
  boot_digest: Schema.String,
  vcpus: Schema.Int,
  mem_mib: Schema.Int,
  scratch_mib: Schema.Int,
  /** Taken after attach (with its scratch disk) or before. */
  stage: Schema.Literal("attached", "boot"),
  /** An attached template's scratch disk has a journal (workspaces). */
  scratch_journal: Schema.Boolean,
  network: Schema.Boolean,
  /** The NIC leads only to the allowlist proxy (another kernel command line and netdev); absent otherwise. */
  network_proxy: Schema.optional(Schema.Literal(true)),
  /** Host channels when more than one: a clone must have the template's virtio-serial ports. */
  channels: Schema.optional(Schema.Int),
  accel: Schema.String,
  /** The QEMU binary's path, size and mtime: a new QEMU cannot load another's device state. */
  qemu: Schema.String
})
export type TemplateInputs = typeof TemplateInputs.Type

export const TemplateManifest = Schema.Struct({
  inputs: TemplateInputs,
  created_at: Schema.String,
  ram_file: Schema.Literal("ram"),
  state_file: Schema.Literal("state"),
  scratch_file: Schema.optional(Schema.Literal("scratch")),
  state_bytes: Schema.Int,
  state_sha256: Schema.String,
  /** Spawn to agent handshake when the template was made. */
  boot_ms: Schema.Int
})
export type TemplateManifest = typeof TemplateManifest.Type

export const decodeTemplateManifest = Schema.decodeUnknownOption(Schema.parseJson(TemplateManifest))
export const encodeTemplateManifest = Schema.encodeSync(Schema.parseJson(TemplateManifest, { space: 2 }))

export const TEMPLATE_MANIFEST = "template.json"

export const templatesRoot = (cacheDir: string) => Path.join(cacheDir, "templates")

export const templateKey = (inputs: TemplateInputs) =>
  Crypto.createHash("sha256").update(JSON.stringify(inputs)).digest("hex").slice(0, 24)

export interface TemplatePaths {
  readonly dir: string
  readonly ram: string
  readonly state: string
  /** The scratch disk as it was when an attached template was saved. */
  readonly scratch: string
  readonly manifest: string
}

export const templatePaths = (dir: string): TemplatePaths => ({
  dir,
  ram: Path.join(dir, "ram"),
  state: Path.join(dir, "state"),
  scratch: Path.join(dir, "scratch"),
  manifest: Path.join(dir, TEMPLATE_MANIFEST)
})

/** What identifies the QEMU binary without running it. */
export const qemuIdentity = (binaryPath: string | undefined) => {
  if (!binaryPath) return "missing"
  try {
    const real = Fs.realpathSync(binaryPath)
    const info = Fs.statSync(real)
    return `${real}:${info.size}:${Math.floor(info.mtimeMs)}`
  } catch {
    return "missing"
  }
}

/** The template at `dir` if it is complete: manifest readable, files of the recorded sizes. */
export const readTemplate = (dir: string): { paths: TemplatePaths; manifest: TemplateManifest } | undefined => {
  const paths = templatePaths(dir)
  try {
    const manifest = decodeTemplateManifest(Fs.readFileSync(paths.manifest, "utf8"))
    if (manifest._tag === "None") return undefined
    if (Fs.statSync(paths.state).size !== manifest.value.state_bytes) return undefined
    if (Fs.statSync(paths.ram).size !== manifest.value.inputs.mem_mib * 1024 * 1024) return undefined
    if (
      manifest.value.inputs.stage === "attached" &&
      Fs.statSync(paths.scratch).size !== manifest.value.inputs.scratch_mib * 1024 * 1024
    ) return undefined
    return { paths, manifest: manifest.value }
  } catch {
    return undefined
  }
}

/** Every complete template for an environment, whatever its inputs (doctor's warm/stale report). */
export const templatesFor = (cacheDir: string, environment: string) => {
  const root = templatesRoot(cacheDir)
  let names: Array<string> = []
  try {
    names = Fs.readdirSync(root)
  } catch {
    return []
  }
  return names
    .filter((n) => !n.includes(".partial-"))
    .flatMap((n) => {
      const found = readTemplate(Path.join(root, n))
      return found && found.manifest.inputs.environment === environment ? [{ key: n, ...found }] : []
    })
}

/** Which inputs differ between a stale template and what is wanted now. */
export const staleBecause = (have: TemplateInputs, want: TemplateInputs): Array<string> =>
  (Object.keys(want) as Array<keyof TemplateInputs>).filter((k) => have[k] !== want[k]).map((k) => `${k} changed`)

/** How long a failure to make a template stops further tries: starts go cold meanwhile. */
export const TEMPLATE_RETRY_AFTER_MS = 10 * 60 * 1000

const failureMarker = (dir: string) => `${dir}.failed`

/** Remember that the template at `dir` could not be made (beside it, so every process sees it). */
export const recordTemplateFailure = (dir: string, reason: string) => {
  try {
    Fs.writeFileSync(failureMarker(dir), JSON.stringify({ reason, at: Date.now() }))
  } catch {
    // Best effort: without the marker the next start just tries again.
  }
}

/** A failure to make the template at `dir` within the retry delay, if any. */
export const recentTemplateFailure = (dir: string, now: number): { reason: string; ago: string } | undefined => {
  try {
    const marker = JSON.parse(Fs.readFileSync(failureMarker(dir), "utf8")) as { reason?: unknown; at?: unknown }
    if (typeof marker.at !== "number" || typeof marker.reason !== "string") return undefined
    if (now - marker.at > TEMPLATE_RETRY_AFTER_MS) return undefined
    return { reason: marker.reason, ago: `${Math.max(1, Math.round((now - marker.at) / 60_000))} min ago (tried again after 10 min)` }
  } catch {
    return undefined
  }
}
