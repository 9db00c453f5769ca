import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { type DoctorReport, doctorReport } from "../doctor/report.js"
import { setExitCode } from "./exitCode.js"
import { json } from "./options.js"
import { printJson, writeStdout, yesNo } from "./output.js"

const noBoot = Options.boolean("no-boot").pipe(Options.withDescription("Skip the real boot check"))

export const formatDoctor = (r: DoctorReport): string => {
  const lines = [
    `Platform: ${r.platform}`,
    `Runtime: ${r.runtime}`,
    `KVM: exists=${yesNo(r.kvm.exists)} readable=${yesNo(r.kvm.readable)} writable=${yesNo(r.kvm.writable)} usable=${yesNo(r.kvm.usable)}`,
    `  ${r.kvm.detail}`,
    `Accelerator: ${r.accelerator.selected} (${r.accelerator.reason})`,
    `QEMU: ${r.qemu.found ? `${r.qemu.path} (${r.qemu.version ?? "version unknown"})` : "not found"}`,
    `Tools: ${r.tools.map((t) => `${t.name}=${yesNo(t.found)}`).join(" ")}`,
    `Kernel: ${r.kernel.kernel.present ? `${r.kernel.kernel.source} ${r.kernel.kernel.version ?? ""} ${r.kernel.kernel.path ?? ""}`.replace(/\s+/g, " ").trim() : `not cached (${r.kernel.kernel.source}; fetched on first use)`}`,
    `Agent: ${r.kernel.agent.built ? `built ${r.kernel.agent.digest.slice(0, 16)}` : "not built"} (compiler musl-gcc=${yesNo(r.kernel.agent.compiler)})`,
    `Initramfs: ${r.kernel.initrd.present ? r.kernel.initrd.path : "not built"}`,
    `Environment cache: ${r.paths.cache_dir}/environments`,
    `State directory: ${r.paths.state_dir}`,
    ...r.environments.map((e) => `  ${e.name} [${e.installed ? "installed" : "not installed"}]`),
    `Spare VMs: ${r.spares.length === 0 ? "none (pyro prepare ENV --spares N)" : "outside the active-VM limit"}`,
    ...r.spares.map((x) =>
      `  ${x.environment} ${x.vcpu_count} vCPU ${x.mem_mib} MiB: ${x.ready} ready, ${x.booting} being made${x.target > 0 ? `, ${x.target} wanted (pyro prepare)` : ""}`
    ),
    `Boot check: ${
      r.boot_check.ran
        ? r.boot_check.ok
          ? `PASS (${r.boot_check.environment}: agent answered in ${r.boot_check.boot_ms} ms, run finished in ${r.boot_check.total_ms} ms)`
          : `FAIL (${r.boot_check.error?.split("\n")[0] ?? "command failed"})`
        : r.boot_check.reason
    }`
  ]
  if (r.environment) {
    const starts = (state: string, reasons: ReadonlyArray<string>) =>
      `${state === "warm" ? "warm (from a template)" : state}${reasons.length > 0 ? ` (${reasons.join("; ")})` : ""}`
    const w = r.environment.workspace_template
    lines.push(
      `Environment ${r.environment.name}: ${r.environment.installed ? "installed" : "not installed"}; VMs start ${
        starts(r.environment.template, r.environment.reasons)
      }; workspaces start ${starts(w.state, w.reasons)}`
    )
  }
  if (r.issues.length > 0) {
    lines.push("Issues:")
    for (const issue of r.issues) lines.push(`  - ${issue.problem}`, `    fix: ${issue.fix}`)
  } else {
    lines.push("Issues: none")
  }
  return lines.join("\n") + "\n"
}

const environment = Options.text("environment").pipe(
  Options.optional,
  Options.withDescription("Also report whether VMs of this environment start warm (from a template) or cold, and why")
)

export const doctorCommand = Command.make("doctor", { json, noBoot, environment }, (args) =>
  Effect.gen(function*() {
    const report = yield* doctorReport({
      bootCheck: !args.noBoot,
      ...(Option.isSome(args.environment) ? { environment: args.environment.value } : {})
    })
    yield* args.json ? printJson(report) : writeStdout(formatDoctor(report))
    const bootFailed = report.boot_check.ran && !report.boot_check.ok
    yield* setExitCode(report.runtime === "PASS" && !bootFailed ? 0 : 1)
  })).pipe(Command.withDescription("Check this host: KVM, QEMU, tools, caches, and a real VM boot"))
